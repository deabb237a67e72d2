"""Fine-tuning as a Snowflake ML job: the real snowflake-ml 2.6 jobs code runs against the fake account."""

from __future__ import annotations

import io
import json
import types
import zipfile

import fake_jobs
import pytest
from fake_jobs import JobOutcome, payload_files
from fake_tables import add_table

from spcs_llm.core.errors import ConfigurationError, DeploymentError, DeploymentTimeoutError, ServiceFailedError
from spcs_llm.deploy import DeploymentNames
from spcs_llm.deploy.finetune.cost import cost_line
from spcs_llm.deploy.finetune.job import (
    ENTRY_SCRIPT,
    TrainingSource,
    attach_finetune,
    check_finetune,
    plan_finetune,
    submit_finetune,
    wait_for_finetune,
)
from spcs_llm.deploy.finetune.training import LoraSettings
from spcs_llm.deploy.finetune.training_data import TrainingColumns

NAMES = DeploymentNames()
SETTINGS = LoraSettings(rank=4, alpha=8, learning_rate=0.01, max_steps=50, system_prompt="-be brief")
PAIRS = [{"INSTRUCTION": "Name a color.", "INPUT": None, "OUTPUT": "Blue."},
         {"INSTRUCTION": "Translate", "INPUT": "chat", "OUTPUT": "cat"}]
REPORT = {"adapter_location": "@SPCS_LLM.MODELS.SPCS_LLM_ADAPTERS/run1", "base_model": "HuggingFaceH4/zephyr-7b-beta",
          "examples": 2, "steps": 3, "losses": [2.5, 1.25, 0.5], "seconds": 42.0}


@pytest.fixture
def jobs(session) -> fake_jobs.FakeJobs:
    add_table(session.account, "PAIRS", ["INSTRUCTION", "INPUT", "OUTPUT"], PAIRS)
    session.ml_jobs.next_outcome = JobOutcome(value=REPORT)
    return session.ml_jobs


def _execute_call(session) -> tuple[dict, dict]:
    (statement,) = [s for s in session.statements if s.startswith("CALL SYSTEM$EXECUTE_ML_JOB")]
    _name, _pool, spec, options = fake_jobs._literals(statement)
    return json.loads(spec), json.loads(options)


def test_submission_uploads_the_entry_script_and_package_and_runs_on_the_gpu_pool(session, jobs):
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), settings=SETTINGS)

    assert job.compute_pool == "SPCS_LLM_GPU_POOL" and job.instance_family == "GPU_NV_S" and job.examples == 2
    assert job.job_id in jobs.jobs and jobs.jobs[job.job_id].compute_pool == "SPCS_LLM_GPU_POOL"
    first = ["SHOW COMPUTE POOLS LIKE 'SPCS_LLM_GPU_POOL'", "DESCRIBE TABLE SPCS_LLM.MODELS.PAIRS",
             "SELECT COUNT(*) AS TOTAL_ROWS, COUNT_IF("]
    assert all(statement.startswith(want) for statement, want in zip(session.statements, first))
    assert "CREATE STAGE IF NOT EXISTS SPCS_LLM.MODELS.SPCS_LLM_ADAPTERS" in session.statements[3]
    assert session.statements[4] == "describe stage identifier('SPCS_LLM.MODELS.SPCS_LLM_JOBS')"
    files = payload_files(session, job.job_id)
    assert files["app/job_main.py"] == ENTRY_SCRIPT.read_bytes()
    package = zipfile.ZipFile(io.BytesIO(files["app/spcs_llm.zip"])).namelist()
    assert {"spcs_llm/deploy/finetune/training.py", "spcs_llm/deploy/finetune/job_main.py",
            "spcs_llm/deploy/finetune/training_data.py"} <= set(package)
    assert b"peft" in files["app/requirements.txt"]
    spec, options = _execute_call(session)
    assert spec["ARGS"][:3] == ["bash", "/mnt/job_stage/system/startup.sh", "/mnt/job_stage/app/job_main.py"]
    assert "generic_gpu" in spec["RUNTIME"] and options["EXTERNAL_ACCESS_INTEGRATIONS"] == ["SPCS_LLM_EGRESS_EAI"]


def test_without_external_access_the_job_asks_pip_for_nothing_and_carries_its_packages(session, jobs):
    # snowflake-ml's job start-up runs `pip install -r requirements.txt` (set -e) whenever pip_requirements were
    # given (jobs/_utils/scripts/startup.sh): with no egress integration that fails, so nothing may be asked of pip.
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), settings=SETTINGS,
                          base_model_stage="@MODELS_STAGE/zephyr", external_access=False)

    files = payload_files(session, job.job_id)
    assert "app/requirements.txt" not in files
    for package in ("peft", "jinja2", "markupsafe"):
        names = zipfile.ZipFile(io.BytesIO(files[f"app/{package}.zip"])).namelist()
        assert f"{package}/__init__.py" in names
    spec, options = _execute_call(session)
    assert not options.get("EXTERNAL_ACCESS_INTEGRATIONS")
    args = spec["ARGS"]
    assert args[args.index("--base-model") + 1] == "@SPCS_LLM.MODELS.MODELS_STAGE/zephyr"


def test_without_external_access_a_hub_model_is_refused_before_anything_is_written(session, jobs):
    with pytest.raises(ConfigurationError, match="cannot download HuggingFaceH4/zephyr-7b-beta") as raised:
        submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), settings=SETTINGS,
                        external_access=False)
    assert "--base-model-stage" in raised.value.fix
    assert not jobs.jobs and not session.statements_like("CREATE STAGE")


def test_without_external_access_and_no_local_peft_the_job_is_refused_with_the_fix(session, jobs, monkeypatch):
    from spcs_llm.deploy.finetune import job as finetune_job

    real = finetune_job._package_dir
    monkeypatch.setattr(finetune_job, "_package_dir", lambda name: None if name == "peft" else real(name))
    with pytest.raises(ConfigurationError, match="cannot pip-install peft") as raised:
        submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), settings=SETTINGS,
                        base_model_stage="@MODELS_STAGE/zephyr", external_access=False)
    assert "requirements-lora.txt" in raised.value.fix and not jobs.jobs


def test_the_job_arguments_carry_the_data_the_output_and_every_setting(session, jobs):
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), "@ADAPTERS/colors",
                          SETTINGS)
    args = _execute_call(session)[0]["ARGS"][3:]
    pairs = dict(zip(args[::2], args[1::2])) if not any("=" in a for a in args) else None
    assert pairs is None  # free text travels as --flag=value
    assert args[args.index("--base-model") + 1] == "HuggingFaceH4/zephyr-7b-beta"
    assert args[args.index("--table") + 1] == "SPCS_LLM.MODELS.PAIRS"
    assert args[args.index("--output") + 1] == job.adapter_location == "@SPCS_LLM.MODELS.ADAPTERS/colors"
    for flag, value in {"--rank": "4", "--alpha": "8", "--learning-rate": "0.01", "--max-steps": "50"}.items():
        assert args[args.index(flag) + 1] == value
    assert "--input-column=input" in args and "--system-prompt=-be brief" in args


def test_a_gated_model_reads_the_hub_token_from_the_secret_and_no_secret_reaches_the_statements(
        session, jobs, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_do_not_leak_123")
    job = submit_finetune(session, NAMES, "llama-2-7b-chat", TrainingSource(table="PAIRS"))
    overrides = _execute_call(session)[0]["SPEC_OVERRIDES"]
    (container,) = overrides["spec"]["containers"]
    assert container["name"] == "main"
    assert container["secrets"] == [{"snowflakeSecret": {"objectName": "SPCS_LLM.MODELS.HF_TOKEN"},
                                     "secretKeyRef": "secret_string", "envVarName": "HF_TOKEN"}]
    assert not any("hf_do_not_leak" in s for s in session.statements)
    assert not any(b"hf_do_not_leak" in data for data in payload_files(session, job.job_id).values())


def test_wait_returns_the_losses_and_where_the_adapter_is(session, jobs):
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), settings=SETTINGS)
    outcome = wait_for_finetune(job)
    assert outcome.losses == (2.5, 1.25, 0.5) and outcome.examples == 2
    assert outcome.adapter_location == REPORT["adapter_location"] and outcome.training_seconds == 42.0
    assert outcome.credits == pytest.approx(0.57 * 300 / 3600)  # at least five minutes of the GPU_NV_S node
    assert any("!spcs_wait_for('DONE'" in s for s in session.statements)
    assert any(s.startswith("DESCRIBE SERVICE IDENTIFIER('SPCS_LLM.MODELS.FINETUNE_ZEPHYR_7B_BETA_")
               for s in session.statements)


def test_a_failed_job_raises_with_the_tail_of_its_log(session, jobs):
    jobs.next_outcome = JobOutcome(status="FAILED", error=ValueError("CUDA out of memory"),
                                   logs="loading model\nstep 1 loss 2.1\nCUDA out of memory")
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"))
    with pytest.raises(ServiceFailedError, match="ended FAILED: .*CUDA out of memory") as error:
        wait_for_finetune(job)
    assert "step 1 loss 2.1" in error.value.logs
    assert any("SYSTEM$GET_SERVICE_LOGS" in s for s in session.statements)


def test_a_failed_job_without_a_log_still_raises_with_its_status(session, jobs):
    jobs.next_outcome = JobOutcome(status="INTERNAL_ERROR", logs=None)
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"))
    with pytest.raises(ServiceFailedError, match="ended INTERNAL_ERROR: no log lines"):
        wait_for_finetune(job)
    assert any("spcs_get_logs" in s for s in session.statements)  # snowflake-ml's fallbacks were tried


def test_a_job_still_running_at_the_timeout_says_how_to_wait_again(session, jobs):
    jobs.next_outcome = JobOutcome(status="RUNNING")
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"))
    with pytest.raises(DeploymentTimeoutError, match=f"--attach {job.job_id}"):
        wait_for_finetune(job, timeout=0)


def test_attach_reads_a_job_submitted_earlier(session, jobs):
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"))
    attached = attach_finetune(session, job.job_id)
    outcome = wait_for_finetune(attached)
    assert outcome.losses == (2.5, 1.25, 0.5) and outcome.adapter_location == REPORT["adapter_location"]
    assert outcome.credits is None  # the pool is not known from the id alone
    with pytest.raises(ConfigurationError, match="no fine-tuning job SPCS_LLM.MODELS.NOPE"):
        attach_finetune(session, "SPCS_LLM.MODELS.NOPE")


def test_a_stage_file_is_read_and_checked_before_submission(session, jobs):
    lines = [{"prompt": "Name a color.", "answer": "Blue."}, {"prompt": "Name a fruit.", "answer": "Pear."}]
    session.account.uploaded["@SPCS_LLM.MODELS.DATA/pairs.jsonl"] = "\n".join(map(json.dumps, lines)).encode()
    columns = TrainingColumns(instruction="prompt", output="answer")
    job = submit_finetune(session, NAMES, "qwen2.5-7b-instruct", TrainingSource(stage_file="@DATA/pairs.jsonl",
                                                                                columns=columns))
    args = _execute_call(session)[0]["ARGS"]
    assert job.examples == 2
    assert args[args.index("--data-file") + 1] == "@SPCS_LLM.MODELS.DATA/pairs.jsonl"
    assert args[args.index("--instruction-column") + 1] == "prompt" and "--input-column=" in args


@pytest.mark.parametrize("call, message", [
    (lambda: plan_finetune(NAMES, "all-minilm-l6-v2", TrainingSource(table="T")), "not a catalog chat model"),
    (lambda: plan_finetune(NAMES, "phi-2", TrainingSource(table="T")), "ships no chat template"),
    (lambda: plan_finetune(NAMES, "zephyr-7b-beta", TrainingSource(table="T"), compute_pool="my pool"),
     "not a plain Snowflake identifier"),
    (lambda: TrainingSource(table="T", stage_file="@S/p.jsonl"), "exactly one of a table or a stage file"),
    (lambda: TrainingSource(table="T; DROP TABLE X"), "is not a table name"),
    (lambda: TrainingSource(stage_file="S/p.jsonl"), "is not a stage path"),
    (lambda: TrainingSource(stage_file="@S/p.parquet"), "not a JSONL or CSV file"),
    (lambda: plan_finetune(NAMES, "zephyr-7b-beta", TrainingSource(table="T"), "@S/a b"), "--output-stage"),
    (lambda: TrainingColumns(instruction="x'y"), "--instruction-column"),
    (lambda: LoraSettings(batch_size=0), "batch_size"),
])
def test_bad_arguments_are_configuration_errors_naming_the_fix(call, message):
    with pytest.raises(ConfigurationError, match=message) as error:
        call()
    assert error.value.fix


@pytest.mark.parametrize("change, message", [
    (lambda j: add_table(j.session.account, "PAIRS", ["PROMPT", "OUTPUT"], PAIRS),
     r"has no instruction column \(it has: PROMPT, OUTPUT\)"),
    (lambda j: add_table(j.session.account, "PAIRS", ["INSTRUCTION", "OUTPUT"],
                         [*PAIRS, {"INSTRUCTION": " ", "OUTPUT": "x"}]),
     "1 of 3 rows have an empty instruction or output"),
    (lambda j: add_table(j.session.account, "PAIRS", ["INSTRUCTION", "OUTPUT"], []), "has no rows"),
    (lambda j: j.tables.clear(), "does not exist or the role cannot read it"),
    (lambda j: j.session.account.compute_pools.update(SPCS_LLM_GPU_POOL="CPU_X64_S"), "a GPU family is needed"),
    (lambda j: j.session.account.compute_pools.clear(), "Compute pool SPCS_LLM_GPU_POOL does not exist"),
])
def test_snowflake_side_problems_stop_before_the_job_is_submitted(session, jobs, change, message):
    change(jobs)
    with pytest.raises(ConfigurationError, match=message):
        submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"))
    assert not jobs.jobs and not any("EXECUTE_ML_JOB" in s for s in session.statements)


def test_a_cpu_pool_is_accepted_when_asked_for(session, jobs):
    session.account.compute_pools["SPCS_LLM_CPU_POOL"] = "CPU_X64_S"
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"),
                          compute_pool="spcs_llm_cpu_pool", allow_cpu_pool=True)
    assert job.compute_pool == "SPCS_LLM_CPU_POOL" and "generic_gpu" not in _execute_call(session)[0]["RUNTIME"]


def test_stage_file_rows_with_an_empty_output_are_reported_by_row_number(session, jobs):
    lines = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""}, {"instruction": "d"}]
    session.account.uploaded["@SPCS_LLM.MODELS.DATA/pairs.jsonl"] = "\n".join(map(json.dumps, lines)).encode()
    with pytest.raises(ConfigurationError, match=r"2 row\(s\) have an empty instruction or output \(rows 2, 3\)"):
        submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(stage_file="@DATA/pairs.jsonl"))
    with pytest.raises(ConfigurationError, match="@SPCS_LLM.MODELS.DATA/missing.csv does not exist"):
        submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(stage_file="@DATA/missing.csv"))
    with pytest.raises(ConfigurationError, match="@SPCS_LLM.MODELS.NO_STAGE/pairs.csv could not be read"):
        submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(stage_file="@NO_STAGE/pairs.csv"))
    assert "LIST @SPCS_LLM.MODELS.DATA/missing.csv" in session.statements and not jobs.jobs


def test_the_cost_is_known_before_anything_is_submitted_and_matches_the_submitted_job(session, jobs):
    checked = check_finetune(session, plan_finetune(NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"),
                                                    settings=SETTINGS))
    line = cost_line(checked, dollars_per_credit=3.0)
    assert "SPCS_LLM_GPU_POOL (GPU_NV_S) bills 0.57 credits/h ($1.71/h)" in line
    assert "50 steps" in line and "credits ($" in line
    assert not jobs.jobs and not session.statements_like("CREATE STAGE")
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), settings=SETTINGS)
    assert cost_line(job, dollars_per_credit=3.0) == line


def test_without_a_scripted_result_the_fake_job_leaves_what_the_entry_script_would(session, jobs):
    jobs.next_outcome = JobOutcome()  # the report and the adapter files derived from the job's arguments
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"), "@ADAPTERS/derived",
                          SETTINGS)
    outcome = wait_for_finetune(job)
    assert outcome.adapter_location == "@SPCS_LLM.MODELS.ADAPTERS/derived" and len(outcome.losses) == 50
    assert outcome.losses[-1] < outcome.losses[0] and outcome.examples == 2
    config = json.loads(session.account.uploaded["@SPCS_LLM.MODELS.ADAPTERS/derived/adapter_config.json"])
    assert config["r"] == 4 and config["base_model_name_or_path"] == "HuggingFaceH4/zephyr-7b-beta"


def test_a_job_that_returns_no_report_is_a_clear_error(session, jobs):
    jobs.next_outcome = JobOutcome(value=None)
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"))
    with pytest.raises(DeploymentError, match="finished without a training report"):
        wait_for_finetune(job)


def test_statements_about_another_fakes_jobs_go_to_the_connection_underneath(session, jobs):
    """With fake_batch.py's connection in place first, its batch jobs stay its own (whichever fake wraps which)."""
    from snowflake.connector.cursor import ResultMetadata
    from snowflake.ml.jobs import job as snowml_job

    class Underneath:
        _cursor = types.SimpleNamespace(description=[ResultMetadata("status", 2, None, None, None, None, True)])

        def run_query(self, query, params=None, **_):
            self.asked = (query, params)
            return {"data": [("RUNNING",)]}

    underneath = Underneath()
    session._conn = fake_jobs.FakeConnection(session, session._conn._handlers, underneath)
    assert snowml_job._get_status(session, "SPCS_LLM.MODELS.SPCS_LLM_BATCH_1") == "RUNNING"
    assert underneath.asked == ("DESCRIBE SERVICE IDENTIFIER(?)", ("SPCS_LLM.MODELS.SPCS_LLM_BATCH_1",))
    job = submit_finetune(session, NAMES, "zephyr-7b-beta", TrainingSource(table="PAIRS"))
    assert wait_for_finetune(job).losses == (2.5, 1.25, 0.5)  # its own jobs are still answered here
