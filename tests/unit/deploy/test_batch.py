"""Bulk inference through the fake account: the real snowml ``Registry`` / ``ModelVersion.run_batch`` / ``MLJob``
code runs down to the recorded SQL; every input row ends with a RESPONSE or its own ERROR."""

from __future__ import annotations

import re

import fake_batch
import fake_snowflake
import pytest
import yaml
from fake_batch import batch_state
from fake_tables import add_table

from spcs_llm.core.errors import DeploymentError
from spcs_llm.deploy.batch.job_spec import plan_sql
from spcs_llm.deploy.batch.plan import BatchRequest, plan_batch_inference
from spcs_llm.deploy.batch.run import RunSettings, execute, run_batch_inference
from spcs_llm.deploy.names import DeploymentNames

NAMES = DeploymentNames()
TEXTS = [f"review number {i}" for i in range(1, 7)]


@pytest.fixture(autouse=True)
def _batch_jobs_answered_first(session):
    """fake_jobs.py, when imported too, installs its own ``session._conn``; batch job statements come first."""
    fake_batch.attach_job_connection(session)


@pytest.fixture
def reviews(account):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    return add_table(account, "SPCS_LLM.MODELS.REVIEWS", {"ID": "NUMBER", "Review": "VARCHAR"},
                     [{"ID": i, "Review": text} for i, text in enumerate(TEXTS)])


def _request(**overrides) -> BatchRequest:
    values = dict(model="zephyr-7b-beta", input_table="REVIEWS", text_column="review", output_table="ANSWERS")
    return BatchRequest(**{**values, **overrides})


def _run(session, settings=RunSettings(), clock=None, **overrides):
    timing = {"clock": clock} if clock else {}
    return run_batch_inference(session, NAMES, _request(**overrides), settings=settings, sleep=lambda _s: None,
                               report=lambda _line: None, **timing)


def _output(account, table="SPCS_LLM.MODELS.ANSWERS"):
    return sorted(batch_state(account).tables[table].rows, key=lambda row: row["ROW_ID"])


def _writes(session):
    return [s for s in session.statements if s.split()[0] in ("CREATE", "INSERT", "COPY", "EXECUTE")]


def test_a_small_table_goes_through_the_service_function_with_chat_messages(session, account, reviews):
    result = _run(session, system_prompt="Answer in one word.", max_tokens=50)

    assert (result.mode, result.rows_total, result.rows_failed) == ("service", 6, 0)
    [insert] = [s for s in session.statements if "!__CALL__(" in s]
    assert insert.startswith('INSERT INTO SPCS_LLM.MODELS.ANSWERS (ROW_ID, "Review", RESPONSE, ERROR) SELECT ROW_ID, '
                             '"Review", SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC!__CALL__(ARRAY_CONSTRUCT(')
    # OpenAI-chat content parts, system message first (openai_signatures.py), then every signature param in order
    assert ("OBJECT_CONSTRUCT('role', 'system', 'content', ARRAY_CONSTRUCT(OBJECT_CONSTRUCT('type', 'text', 'text', "
            "'Answer in one word.'))), OBJECT_CONSTRUCT('role', 'user', 'content', ARRAY_CONSTRUCT(OBJECT_CONSTRUCT("
            "'type', 'text', 'text', \"Review\"))))") in insert
    assert "), 1.0, 50, [], 1, false, 1.0, 0.0, 0.0, OBJECT_CONSTRUCT_KEEP_NULL(" in insert
    assert insert.endswith("WHERE ROW_ID BETWEEN 1 AND 6")
    rows = _output(account)
    assert [r["RESPONSE"]["choices"][0]["message"]["content"] for r in rows] == [f"answer to: {t}" for t in TEXTS]
    assert all(r["ERROR"] is None for r in rows)
    assert not any(s.startswith("EXECUTE INFERENCE JOB SERVICE") for s in session.statements)


def test_a_failing_row_gets_its_own_error_and_the_others_their_answers_on_the_service_path(session, account, reviews):
    batch_state(account).failing_texts.add(TEXTS[4])

    result = _run(session, settings=RunSettings(chunk_rows=4))

    assert (result.rows_total, result.rows_failed) == (6, 1)
    rows = _output(account)
    assert [r["ROW_ID"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[4]["RESPONSE"] is None and "Request failed for external function __CALL__" in rows[4]["ERROR"]
    assert all(r["ERROR"] is None and r["RESPONSE"] for i, r in enumerate(rows) if i != 4)
    ranges = [re.search(r"BETWEEN (\d+) AND (\d+)$", s).groups() for s in session.statements if "!__CALL__(" in s]
    assert ranges == [("1", "4"), ("5", "6"), ("5", "5"), ("6", "6")]  # the failing chunk is halved


def test_after_too_many_failures_the_service_run_stops_and_every_other_row_says_so(session, account, reviews):
    batch_state(account).failing_texts.update(TEXTS)

    result = _run(session, settings=RunSettings(chunk_rows=2, max_failed_rows=2))

    assert (result.rows_total, result.rows_failed) == (6, 6)
    errors = [r["ERROR"] for r in _output(account)]
    assert all("Request failed" in e for e in errors[:2])
    assert errors[2:] == ["not scored: the run stopped after 2 failing rows"] * 4


def test_a_large_table_runs_as_a_batch_job_through_the_real_run_batch(session, account, reviews):
    account.lora_adapters_enabled = True
    account.add_version("SUPPORT_TONE", "V1")

    result = _run(session, service_threshold_rows=5, replicas=3, adapter="support_tone", max_tokens=64,
                  max_model_len=4096, engine_args=("--enforce-eager",))

    assert (result.mode, result.rows_total, result.rows_failed, result.job_status) == ("job", 6, 0, "DONE")
    state = batch_state(account)
    [job] = state.jobs.values()
    assert job.fqn == result.job_id.upper() and job.fqn.startswith("SPCS_LLM.MODELS.SPCS_LLM_BATCH_ZEPHYR_7B_BETA_")
    assert (job.model, job.version, job.function, job.pool, job.replicas) == (
        "ZEPHYR_7B_BETA", "V1", "__call__", "SPCS_LLM_GPU_POOL", 3)
    assert job.spec["input"] == {"params": {"max_completion_tokens": 64, "model": "support_tone"}}
    assert job.spec["inference"] == {
        "engine_options": {"engine": "VLLM", "engine_args_override": ["--max-model-len=4096", "--enforce-eager"]},
        "adapters": [{"name": "SPCS_LLM.MODELS.SUPPORT_TONE", "version": "V1", "alias": "support_tone"}]}
    assert job.spec["resources"] == {"gpu_requests": "1"}
    assert job.spec["output"]["mode"] == "error"
    assert not job.input_location.startswith(job.spec["output"]["stage_location"])
    assert [set(row) for row in state.files[job.input_location]] == [{"ROW_ID", "Review", "messages"}] * 6
    rows = _output(account)
    assert [r["RESPONSE"]["model"] for r in rows] == ["support_tone"] * 6
    assert [r["RESPONSE"]["choices"][0]["message"]["content"] for r in rows] == [f"answer to: {t}" for t in TEXTS]
    assert all(set(r["RESPONSE"]) == {"id", "object", "created", "model", "choices", "usage"} for r in rows)
    polls = [s for s in session.statements if s.startswith("DESCRIBE SERVICE IDENTIFIER(")]
    assert len(polls) == 3  # PENDING, RUNNING, DONE: MLJob.status through the session's connection


def test_rows_a_job_returns_no_result_for_are_in_the_output_with_an_error(session, account, reviews):
    batch_state(account).failing_texts.add(TEXTS[1])

    result = _run(session, mode="job")

    assert (result.rows_total, result.rows_failed) == (6, 1)
    failed = _output(account)[1]
    assert failed["RESPONSE"] is None
    assert failed["ERROR"] == f"no result for this row in the output of job {result.job_id}"


def test_the_job_input_carries_the_row_id_and_results_are_read_only_after_checking_for_it(session, account, reviews):
    result = _run(session, mode="job")

    state = batch_state(account)
    [job] = state.jobs.values()
    assert all("ROW_ID" in row for row in state.files[job.input_location])
    [check] = [s for s in session.statements if s.startswith("SELECT COUNT(*) AS RESULT_ROWS")]
    assert f"COUNT($1:ROW_ID) AS ROWS_WITH_ROW_ID FROM {job.output_location} " in check
    assert session.statements.index(check) < next(
        i for i, s in enumerate(session.statements) if "OBJECT_DELETE($1" in s)
    assert (result.rows_total, result.rows_failed) == (6, 0)


def test_job_results_without_the_row_id_stop_the_run_naming_where_they_are(session, account, reviews):
    batch_state(account).drops_input_columns = True

    with pytest.raises(DeploymentError, match="without the ROW_ID column") as raised:
        _run(session, mode="job")

    [job] = batch_state(account).jobs.values()
    assert f"SELECT $1 FROM {job.output_location}" in raised.value.fix
    assert "notebooks/requirements.txt" in raised.value.fix
    assert not [s for s in session.statements if "OBJECT_DELETE($1" in s]  # nothing was loaded by position
    rows = _output(account)
    assert len(rows) == 6 and all(r["RESPONSE"] is None and "has no ROW_ID column" in r["ERROR"] for r in rows)


def test_a_failed_job_leaves_every_row_with_an_error_naming_the_job(session, account, reviews):
    batch_state(account).next_job_statuses = ["PENDING", "FAILED"]

    result = _run(session, mode="job")

    assert (result.job_status, result.rows_total, result.rows_failed) == ("FAILED", 6, 6)
    assert all(r["ERROR"].startswith(f"job {result.job_id} ended FAILED before this row had a result; its logs: ")
               for r in _output(account))


def test_the_printed_sql_is_what_runs(session, account, reviews):
    plan = plan_batch_inference(session, NAMES, _request(mode="job", replicas=2))
    script = "\n".join(line for line in plan_sql(plan).splitlines() if not line.startswith("-- "))
    printed = [" ".join(statement.rstrip(";").split()) for statement in script.split(";\n")]

    execute(session, plan, sleep=lambda _s: None, report=lambda _line: None)

    executed = [" ".join(s.rstrip(";").split()) for s in _writes(session)]
    [sent] = [s for s in executed if s.startswith("EXECUTE INFERENCE JOB SERVICE")]
    assert sent in printed  # run_batch's statement, rebuilt by snowml's own functions for printing
    assert all(statement in printed for statement in executed)


def test_auto_takes_the_service_for_small_tables_and_a_job_without_a_service(session, account, reviews):
    assert plan_batch_inference(session, NAMES, _request()).mode == "service"
    assert plan_batch_inference(session, NAMES, _request(service_threshold_rows=6)).mode == "job"
    account.services.clear()
    assert plan_batch_inference(session, NAMES, _request()).mode == "job"


def test_an_embedding_model_gets_its_text_on_the_cpu_pool(session, account):
    account.add_service("ALL_MINILM_L6_V2", "V1", "ALL_MINILM_L6_V2_SVC", ["RUNNING"], pool="SPCS_LLM_CPU_POOL")
    account.model_specs[("ALL_MINILM_L6_V2", "V1")] = fake_snowflake.imported_model_spec(
        "ALL_MINILM_L6_V2", {"hf_model_name": "sentence-transformers/all-MiniLM-L6-v2", "task": "feature-extraction"})
    add_table(account, "SPCS_LLM.MODELS.DOCS", {"BODY": "VARCHAR"}, [{"BODY": "a"}, {"BODY": "bb"}])

    service = _run(session, model="all-minilm-l6-v2", input_table="DOCS", text_column="BODY", output_table="VECS")
    job = _run(session, model="all-minilm-l6-v2", input_table="DOCS", text_column="BODY", output_table="VECS_JOB",
               mode="job")

    assert [s for s in session.statements if "!ENCODE(" in s][0].startswith(
        'INSERT INTO SPCS_LLM.MODELS.VECS (ROW_ID, "BODY", RESPONSE, ERROR) SELECT ROW_ID, "BODY", '
        'SPCS_LLM.MODELS.ALL_MINILM_L6_V2_SVC!ENCODE("BODY"), NULL')
    assert [r["RESPONSE"]["output"][0] for r in _output(account, "SPCS_LLM.MODELS.VECS")] == [1.0, 2.0]
    [spec] = [j for j in batch_state(account).jobs.values()]
    assert (spec.pool, spec.function) == ("SPCS_LLM_CPU_POOL", "encode")
    assert "inference" not in spec.spec and "resources" not in spec.spec  # Python engine, CPU
    assert [r["RESPONSE"] for r in _output(account, "SPCS_LLM.MODELS.VECS_JOB")] == [
        {"output": [1.0, 0.5, -0.5]}, {"output": [2.0, 0.5, -0.5]}]
    assert (service.rows_failed, job.rows_failed) == (0, 0)


def test_the_cost_estimate_is_pool_rate_times_nodes_times_expected_hours(session, account, reviews):
    from spcs_llm.core.cost import instance_family_rates

    rate = instance_family_rates()["GPU_NV_S"]
    plan = plan_batch_inference(session, NAMES, _request(mode="job", replicas=2, seconds_per_row=90.0))

    # 6 rows × 90 s ÷ 2 nodes = 270 s, + 3-10 min start-up (vLLM: no image build)
    assert plan.estimate.credits_range == pytest.approx((rate * 2 * 450 / 3600, rate * 2 * 870 / 3600))
    assert "6 rows × 90 s/row (seconds per row as given) ÷ 2 node(s) + 3-10 min start-up" in plan.estimate.text()
    python = plan_batch_inference(session, NAMES, _request(mode="job", engine="python", seconds_per_row=1.0))
    # the Python engine builds an image first: + 10-30 min; 6 s of rows
    assert python.estimate.credits_range == pytest.approx((rate * (13 * 60 + 6) / 3600, rate * (40 * 60 + 6) / 3600))
    service = plan_batch_inference(session, NAMES, _request(seconds_per_row=1.0))
    assert service.estimate.credits_range == pytest.approx((rate * 300 / 3600,) * 2)  # 6 s, billed 5 min minimum
    assert "bills these hours anyway" in service.estimate.text()
    assert "≈ under a minute on GPU_NV_S" in service.estimate.text()  # 6 s of rows, no start-up
    assert "≈ 7-15 min on GPU_NV_S" in plan.estimate.text()  # 450-870 s
    assert not _writes(session)


def test_the_estimate_states_its_assumption_when_no_rate_is_given(session, account, reviews):
    text = plan_batch_inference(session, NAMES, _request(mode="job")).estimate.text()
    assert text.startswith("Estimate (not a quote): 6 rows × 0.2 s/row (an assumed rate")


@pytest.mark.parametrize(("overrides", "error", "fix"), [
    (dict(input_table="NOPE"), "Input table SPCS_LLM.MODELS.NOPE cannot be read", "GRANT SELECT"),
    (dict(text_column="BODY"), "has no column 'BODY' (columns: ID, Review)", "--text-column"),
    (dict(input_table="bad-name"), "is not a table name", "DATABASE.SCHEMA.TABLE"),
    (dict(output_table="REVIEWS"), "The output table is the input table", "--output-table"),
    (dict(compute_pool="MISSING_POOL"), "Compute pool MISSING_POOL does not exist", "setup-sql"),
    (dict(compute_pool="SPCS_LLM_CPU_POOL"), "has no GPU", "--compute-pool"),
    (dict(engine="python", adapter="support_tone"), "needs the vLLM engine", "--engine vllm"),
    (dict(engine="python", engine_args=("--enforce-eager",)), "tune the vLLM engine", "--engine vllm"),
    (dict(replicas=0), "replicas must be at least 1", "--replicas"),
    (dict(version="V9"), "version V9 is not in the registry", "spcs-llm deploy zephyr-7b-beta"),
    (dict(adapter="nope"), "Adapter NOPE version V1 is not in the registry", "log_adapter"),
    (dict(temperature=-1.0, max_tokens="many"), "Invalid generation parameter", "Correct the value"),
])
def test_bad_input_is_refused_before_anything_is_written(session, account, reviews, overrides, error, fix):
    with pytest.raises(Exception) as caught:
        plan_batch_inference(session, NAMES, _request(**overrides))
    assert error in caught.value.message and fix in caught.value.fix
    assert not _writes(session)


def test_an_existing_output_table_is_not_overwritten_unless_asked(session, account, reviews):
    add_table(account, "SPCS_LLM.MODELS.ANSWERS", {"X": "NUMBER"}, [{"X": 1}])
    with pytest.raises(Exception, match="already exists; it is not overwritten silently") as caught:
        plan_batch_inference(session, NAMES, _request())
    assert "--overwrite" in caught.value.fix

    _run(session, overwrite=True)
    assert any(s.startswith("CREATE OR REPLACE TABLE SPCS_LLM.MODELS.ANSWERS ") for s in session.statements)
    assert len(_output(account)) == 6


def test_the_service_mode_needs_a_service_and_embeddings_take_no_chat_options(session, account, reviews):
    account.services.clear()
    with pytest.raises(Exception, match="needs the model's service SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC") as caught:
        plan_batch_inference(session, NAMES, _request(mode="service"))
    assert "--mode job" in caught.value.fix
    with pytest.raises(Exception, match="is an embedding model"):
        plan_batch_inference(session, NAMES, _request(model="all-minilm-l6-v2", system_prompt="Be brief."))
    assert not _writes(session)


def test_the_job_spec_is_yaml_snowml_wrote(session, account, reviews):
    """The fake reads the spec from the statement as sent (line breaks kept), not from our own objects."""
    _run(session, mode="job")
    raw = next(s for s in batch_state(account).raw_statements if s.startswith("EXECUTE INFERENCE JOB SERVICE"))
    assert "\nWITH SPECIFICATION 'input:" not in raw  # no params given: no input block
    assert yaml.safe_load(raw.split("WITH SPECIFICATION '", 1)[1].split("'\nFROM", 1)[0].replace("\\'", "'"))[
        "output"]["stage_location"].endswith("/output/")
    assert fake_batch._handlers in fake_snowflake.HANDLER_EXTENSIONS


def test_a_job_still_running_at_the_timeout_is_reported_with_how_to_follow_it(session, account, reviews):
    batch_state(account).next_job_statuses = ["RUNNING"]
    ticks = iter(range(0, 10_000, 100))

    with pytest.raises(Exception, match=r"is still RUNNING after \d+ min; it keeps running") as caught:
        _run(session, mode="job", settings=RunSettings(timeout_s=250), clock=lambda: next(ticks))
    assert "snowflake.ml.jobs.get_job('SPCS_LLM.MODELS.SPCS_LLM_BATCH_ZEPHYR_7B_BETA_" in caught.value.fix


def test_a_job_the_server_refuses_is_a_deployment_error_with_its_reason(session, account, reviews):
    account.compute_pools["SPCS_LLM_GPU_POOL"] = "GPU_NV_S"
    plan = plan_batch_inference(session, NAMES, _request(mode="job"))
    del account.compute_pools["SPCS_LLM_GPU_POOL"]  # dropped between the plan and the run

    with pytest.raises(Exception, match="run_batch was refused: .*Compute pool 'SPCS_LLM_GPU_POOL' does not exist"):
        execute(session, plan, sleep=lambda _s: None, report=lambda _line: None)
