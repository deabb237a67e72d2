"""The deployment notebook runs top to bottom against the fake session, so it cannot drift from the library.

It runs in its own kernel against ``fake_notebook_account``: an account with LoRA adapters enabled and the ML jobs,
batch and Cortex fine-tuning fakes. Three runs:

* as shipped ("Run all" with the defaults), on an account without the example tables: nothing billed is submitted,
  each billed step prints its estimate and how to opt in, and the example tables are created from the samples;
* opted in (``RUN_BILLED_STEPS = True`` in the first cell, as a user would set it), on an account that already holds
  the tables the settings name: every section deploys, trains, serves and scores, and the tables are left alone;
* without ``DSS_URL``: the notebook stops at its check, in notebook words.

The kernel is another process, so a cell appended to the in-memory copy prints what the fake account recorded.
Each test then checks one part of what the cells printed, so a broken section names itself.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import fake_notebook_account
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SAMPLES = ROOT / "notebooks" / "samples"
SECTIONS = ["Fine-tune a LoRA adapter (Snowflake ML job on the GPU pool)", "Serve the fine-tuned model",
            "Bulk inference over a table", "Fine-tune with Snowflake Cortex (hosted)", "Teardown"]
OPT_IN = ("RUN_BILLED_STEPS = False", "RUN_BILLED_STEPS = True")
FLAGS = ["RUN_DEPLOY", "RUN_LORA_FINETUNE", "RUN_SERVE_ADAPTERS", "RUN_BATCH", "RUN_CORTEX_FINETUNE"]
# What starts billed compute, as the fake account sees it: snowflake-ml creates services with SYSTEM$DEPLOY_MODEL and
# logs Hub models with SYSTEM$IMPORT_MODEL (model_version_impl.py / model_ops), submits ML jobs with
# SYSTEM$EXECUTE_ML_JOB (jobs/_utils), runs batch jobs with EXECUTE INFERENCE JOB SERVICE; Cortex trains on
# SNOWFLAKE.CORTEX.FINETUNE('CREATE', ...); the service path of a batch run INSERTs the answers.
BILLED = ["SYSTEM$DEPLOY_MODEL", "SYSTEM$IMPORT_MODEL", "CREATE SERVICE", "SYSTEM$EXECUTE_ML_JOB",
          "SNOWFLAKE.CORTEX.FINETUNE('CREATE'", "EXECUTE INFERENCE JOB SERVICE",
          "INSERT INTO SPCS_LLM.MODELS.SUPPORT_TICKETS_ANSWERS"]
RECORDED = "RECORDED "
REPORT_CELL = f"""import json as _json
import fake_tables as _fake_tables
print({RECORDED!r} + _json.dumps({{"statements": session.statements,
      "tables": {{key: len(table.rows) for key, table in _fake_tables.tables(session.account).items()}}}}))"""


def _text_outputs(notebook) -> str:
    return "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.get("outputs", []))


def _first_code_cell(notebook):
    return next(cell for cell in notebook.cells if cell.cell_type == "code")


def _execute(*, opt_in: bool = False, dss_url: str | None = "https://dss.mycompany.com",
             tables_present: bool = False) -> tuple[str, dict]:
    """Run every notebook in a fresh kernel; what the cells printed, and what the fake account recorded."""
    printed, recorded = [], {"statements": [], "tables": {}}
    with pytest.MonkeyPatch.context() as env:
        # The kernel is a separate process: it finds the fake through the session-factory hook the CLI uses.
        env.setenv("SPCS_LLM_SESSION_FACTORY", "fake_notebook_account:session")
        env.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "python-lib"), str(Path(__file__).parent)]))
        env.setenv("HF_HUB_OFFLINE", "1")
        if dss_url is None:
            env.delenv("SPCS_LLM_DSS_URL", raising=False)
        else:
            env.setenv("SPCS_LLM_DSS_URL", dss_url)
        env.setenv("SPCS_LLM_CONFIRM_TEARDOWN", "SPCS_LLM")
        env.delenv("SPCS_LLM_SMOKE_PAT", raising=False)
        if tables_present:
            env.setenv(fake_notebook_account.TABLES_ENV, "present")
        else:
            env.delenv(fake_notebook_account.TABLES_ENV, raising=False)
        for path in NOTEBOOKS:
            notebook = nbformat.read(path, as_version=4)
            if opt_in:  # what a user does: flip the switch in the first cell
                first = _first_code_cell(notebook)
                assert first.source.count(OPT_IN[0]) == 1
                first.source = first.source.replace(*OPT_IN)
            notebook.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
            NotebookClient(notebook, timeout=180, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            report = "".join(output.get("text", "") for output in notebook.cells.pop().outputs)
            found = json.loads(report[report.index(RECORDED) + len(RECORDED):])
            recorded["statements"] += found["statements"]
            recorded["tables"].update(found["tables"])
            printed.append(_text_outputs(notebook))
    return "\n".join(printed), recorded


@pytest.fixture(scope="module")
def opted_in() -> tuple[str, dict]:
    """Opted in, on an account that already holds the tables the settings name (a failing cell fails here)."""
    return _execute(opt_in=True, tables_present=True)


@pytest.fixture(scope="module")
def out(opted_in) -> str:
    """What every code cell printed in the opted-in run."""
    return opted_in[0]


@pytest.fixture(scope="module")
def as_shipped() -> tuple[str, dict]:
    """"Run all" with the defaults, on an account without the example tables."""
    return _execute()


def _lines(out: str) -> list[str]:
    return [" ".join(line.split()) for line in out.splitlines()]


def test_there_is_a_deployment_notebook():
    assert NOTEBOOKS


def test_the_notebook_executes_and_ends_with_connection_settings(out):
    assert "Running standalone" in out
    lines = _lines(out)
    assert "Endpoint: https://zephyr_7b_beta_svc-org-acct.snowflakecomputing.app" in lines
    assert "Service protocol: OpenAI-chat rows (messages → choices)" in lines
    assert "Endpoint: https://all_minilm_l6_v2_svc-org-acct.snowflakecomputing.app" in lines
    assert "Rows per request: 64" in lines
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in out
    assert "zephyr-7b-beta: ~14.5 GB of weights, downloaded by Snowflake itself" in out  # the estimate cell
    assert "skipped: set a programmatic access token" in out  # the smoke-test cell without a PAT
    assert "If left as it is" not in out and "Billing now: 0.00 credits/h" in out  # pools suspended in the fake
    assert "GRANT IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE" in out  # metering not readable in the fake
    assert "ran: DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in out  # teardown confirmed by database name
    assert "OAUTH_REDIRECT_URI = 'https://dss.mycompany.com/dip/api/oauth2-callback'" in out


def test_the_finetune_section_costs_then_submits_on_the_gpu_pool_and_prints_falling_losses(out):
    pairs = len(fake_notebook_account.TRAINING_PAIRS)
    assert f"{pairs} training pairs in SPCS_LLM.MODELS.SUPPORT_PAIRS; base model HuggingFaceH4/zephyr-7b-beta" in out
    cost = out.index("Cost: pool SPCS_LLM_GPU_POOL (GPU_NV_S) bills 0.57 credits/h ($1.71/h) while the job runs")
    submitted = re.search(r"Submitted fine-tuning job (SPCS_LLM\.MODELS\.FINETUNE_ZEPHYR_7B_BETA_\w+) on "
                          rf"SPCS_LLM_GPU_POOL \(GPU_NV_S, {pairs} pairs\)\.", out)
    assert submitted and cost < submitted.start()  # the cost is shown before anything is submitted
    assert f"Job {submitted[1]} done: 100 steps on {pairs} pairs" in out
    losses = [float(loss) for loss in re.findall(r"^step +\d+ +loss (\d+\.\d+) +#+$", out, re.MULTILINE)]
    assert len(losses) == 8 and losses == sorted(losses, reverse=True) and losses[0] > losses[-1]
    assert re.search(r"^Billed about \d+\.\d+ credits \(\$\d+\.\d\d\)", out, re.MULTILINE)
    assert re.search(r"^Adapter: @SPCS_LLM\.MODELS\.SPCS_LLM_ADAPTERS/finetune_zephyr_7b_beta_\w+$", out, re.MULTILINE)


def test_the_serve_section_prints_a_vllm_settings_block_for_the_adapter(out):
    lines = _lines(out)
    assert "Note: support_tone: logged as SUPPORT_TONE V1, pinned to its base." in lines  # LoRA on: not merged
    assert ("Service SPCS_LLM.MODELS.ZEPHYR_7B_BETA_LORA_SVC (RUNNING) serves HuggingFaceH4/zephyr-7b-beta with the "
            "vllm engine; one Dataiku model per adapter:") in lines
    block = out[out.index("with LoRA adapter support_tone served by SPCS_LLM.MODELS.ZEPHYR_7B_BETA_LORA_SVC"):]
    block_lines = _lines(block.split("\n\n")[0])
    assert "Endpoint: https://zephyr_7b_beta_lora_svc-org-acct.snowflakecomputing.app" in block_lines
    assert "Inference engine: vLLM" in block_lines and "LoRA adapter: support_tone" in block_lines


def test_the_batch_section_prints_the_estimate_and_sql_then_scores_every_row(out):
    rows = len(fake_notebook_account.TICKETS)
    plan = out.index(f"zephyr-7b-beta over SPCS_LLM.MODELS.SUPPORT_TICKETS ({rows} rows) -> "
                     "SPCS_LLM.MODELS.SUPPORT_TICKETS_ANSWERS: service on SPCS_LLM_GPU_POOL")
    estimate = out.index(f"Estimate (not a quote): {rows} rows × 0.2 s/row", plan)
    assert "Cost ≈ 0.57 credits/h × 1 node(s)" in out[estimate:]
    sql = out.index('INSERT INTO SPCS_LLM.MODELS.SUPPORT_TICKETS_ANSWERS (ROW_ID, "QUESTION", RESPONSE, ERROR) SELECT '
                    'ROW_ID, "QUESTION", SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC!__CALL__(', estimate)
    progress = out.index(f"{rows}/{rows} rows scored, 0 failed", sql)  # printed while it runs
    assert out.index(f"{rows} rows written to SPCS_LLM.MODELS.SUPPORT_TICKETS_ANSWERS in ", progress)
    assert f"Rows scored: {rows} of {rows}." in out
    assert ("SELECT ROW_ID, RESPONSE:choices[0]:message:content::VARCHAR AS REPLY, ERROR FROM "
            "SPCS_LLM.MODELS.SUPPORT_TICKETS_ANSWERS ORDER BY ROW_ID;") in out


def test_the_cortex_section_shows_the_sql_then_follows_the_job_and_prints_the_cortex_settings(out):
    rows = len(fake_notebook_account.TRAINING_PAIRS)
    plan = out.index(f"mistral-7b on SPCS_LLM.MODELS.SUPPORT_PAIRS ({rows} rows) -> "
                     "SPCS_LLM.MODELS.SUPPORT_TONE_CORTEX")
    unknown = out.index("training cost unknown", plan)  # no training rate set: said, never 0
    sql = out.index("SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'SUPPORT_TONE_CORTEX', 'mistral-7b', ", unknown)
    started = out.index("Fine-tuning job started: ", sql)
    assert out.index("SUCCESS", started) < out.index("Fine-tuned model: SPCS_LLM.MODELS.SUPPORT_TONE_CORTEX", started)
    assert "SPCS_LLM.MODELS.SUPPORT_TONE_CORTEX" in out[out.index("Fine-tuned model:"):]


def test_the_notebook_is_honest_about_downloads_kernels_and_cites_no_internal_documents():
    for path in NOTEBOOKS:
        text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        assert "downloaded whole to\nthe machine running this notebook" in text
        assert "notebooks/requirements.txt" in text and "kernel" in text
        assert "dss.example.com" not in text
        assert not re.search(r"§|\[inf|\[T:|spcs-protocol|design|\.md\b", text)


def test_the_new_sections_come_before_teardown_and_say_what_they_cost_and_need():
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        headings = [cell.source.splitlines()[0] for cell in cells if cell.source.startswith("## ")]
        assert headings[-5:] == [f"## {number}. {title}" for number, title in zip(range(6, 11), SECTIONS)]
        text = "\n".join(cell.source for cell in cells)
        for needed in ("credits per hour", "GPU instance family", "egress integration", "ENABLE_LORA_ADAPTERS",
                       "merged into the base weights"):
            assert needed in text
        # the names a user edits are settings at the top of their section, and the fake account holds those tables
        assert f'TRAINING_TABLE = "{fake_notebook_account.TRAINING_TABLE}"' in text
        assert f'BATCH_INPUT_TABLE = "{fake_notebook_account.BATCH_INPUT_TABLE}"' in text
        assert f'BATCH_TEXT_COLUMN = "{fake_notebook_account.BATCH_TEXT_COLUMN}"' in text
        assert all(not cell.get("outputs") for cell in cells if cell.cell_type == "code")  # saved without outputs


def _billed(statements: list[str]) -> list[str]:
    return [statement for statement in statements if any(mark in statement.upper() for mark in BILLED)]


def test_run_all_as_shipped_submits_nothing_billed(as_shipped):
    out, recorded = as_shipped
    assert "Billed steps switched on: none" in out
    assert recorded["statements"], "the report cell saw no statements: the recording is not wired"
    assert _billed(recorded["statements"]) == []  # no service, model import, ML job, batch job or Cortex training
    assert "Submitted fine-tuning job" not in out and "Fine-tuning job started" not in out
    assert "Nothing to wait for: no fine-tuning job was submitted above." in out
    assert "Smoke test skipped: nothing was deployed above" in out
    assert "ran: DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in out  # the cells after the skipped ones still run


def test_each_skipped_billed_step_prints_its_estimate_and_how_to_opt_in(as_shipped):
    out, _ = as_shipped
    skipped = {flag: out.split(f"Skipped: {flag} is False in the first cell")[1:] for flag in FLAGS}
    assert {flag: len(found) for flag, found in skipped.items()} == {flag: 2 if flag == "RUN_DEPLOY" else 1
                                                                      for flag in FLAGS}

    def block(flag: str, index: int = 0) -> str:
        text = skipped[flag][index]
        assert "nothing was submitted and nothing is billed. What it would cost:" in text.splitlines()[0]
        end = text.index(f"To run it: set {flag} = True (or RUN_BILLED_STEPS = True, for every billed step) in "
                         "the first cell")
        return text[:end]

    assert "zephyr-7b-beta: ~14.5 GB of weights" in block("RUN_DEPLOY", 0)  # deploy.estimate, per model
    assert "GPU_NV_S: 0.57 credits/h ($1.71/h) while a node runs" in block("RUN_DEPLOY", 0)
    assert "all-minilm-l6-v2: ~46 MB of weights" in block("RUN_DEPLOY", 1)
    assert re.search(r"Cost: pool SPCS_LLM_GPU_POOL \(GPU_NV_S\) bills 0\.57 credits/h \(\$1\.71/h\) while the job "
                     r"runs; expected \d+-\d+ min .* ≈ \d+\.\d\d-\d+\.\d\d credits", block("RUN_LORA_FINETUNE"))
    assert "zephyr-7b-beta: ~14.5 GB of weights" in block("RUN_SERVE_ADAPTERS")  # the adapters' own GPU service
    tickets = sum(1 for line in (SAMPLES / "support_tickets.jsonl").read_text().splitlines() if line.strip())
    assert re.search(rf"Estimate \(not a quote\): {tickets} rows × 0\.2 s/row .* Cost ≈ 0\.57 credits/h × 1 node\(s\)",
                     block("RUN_BATCH"))
    assert "training tokens per epoch" in block("RUN_CORTEX_FINETUNE")
    assert "training cost unknown" in block("RUN_CORTEX_FINETUNE")  # no rate set: said, never 0
    # the plans are still shown for review: the batch run without a deployed model, the Cortex SQL not run
    assert (f"zephyr-7b-beta is not deployed (SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC not found), so the run is not planned "
            f"yet. Once it is: SPCS_LLM.MODELS.SUPPORT_TICKETS ({tickets} rows)") in out
    # the model's name alone: USE SCHEMA, run just before, picks its registry
    assert "SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'SUPPORT_TONE_CORTEX'" in out


def test_run_all_as_shipped_creates_the_example_tables_from_the_samples(as_shipped):
    out, recorded = as_shipped
    for table, sample in (("SUPPORT_PAIRS", "support_pairs.jsonl"), ("SUPPORT_TICKETS", "support_tickets.jsonl")):
        rows = [json.loads(line) for line in (SAMPLES / sample).read_text(encoding="utf-8").splitlines() if line]
        assert 20 <= len(rows) <= 60
        fqn = f"SPCS_LLM.MODELS.{table}"
        assert f"{fqn} created from notebooks/samples/{sample}: {len(rows)} rows." in out
        assert recorded["tables"][fqn] == len(rows)
        assert [s for s in recorded["statements"] if s.startswith(f"CREATE TABLE {fqn} ")]
    pairs = sum(1 for line in (SAMPLES / "support_pairs.jsonl").read_text().splitlines() if line.strip())
    # the sections read the tables just created: the LoRA check and the Cortex plan count every pair
    assert f"{pairs} training pairs in SPCS_LLM.MODELS.SUPPORT_PAIRS" in out
    assert f"mistral-7b on SPCS_LLM.MODELS.SUPPORT_PAIRS ({pairs} rows)" in out


def test_opting_in_runs_every_billed_step_and_leaves_existing_tables_alone(opted_in):
    out, recorded = opted_in
    assert "Billed steps switched on: " + ", ".join(FLAGS) in out
    assert "Skipped:" not in out
    statements = recorded["statements"]
    for mark in ("SYSTEM$DEPLOY_MODEL", "SYSTEM$EXECUTE_ML_JOB", "SNOWFLAKE.CORTEX.FINETUNE('CREATE'",
                 "INSERT INTO SPCS_LLM.MODELS.SUPPORT_TICKETS_ANSWERS"):
        assert any(mark in statement for statement in statements), mark
    for table in ("SUPPORT_PAIRS", "SUPPORT_TICKETS"):
        assert f"SPCS_LLM.MODELS.{table} exists: used as it is." in out
        assert not [s for s in statements if s.startswith(f"CREATE TABLE SPCS_LLM.MODELS.{table} ")]
    assert recorded["tables"]["SPCS_LLM.MODELS.SUPPORT_PAIRS"] == len(fake_notebook_account.TRAINING_PAIRS)


@pytest.mark.parametrize("dss_url", [None, "dss.example.org"], ids=["missing", "not-a-url"])
def test_dss_url_is_asked_for_in_notebook_words_before_anything_runs(dss_url):
    with pytest.raises(CellExecutionError) as failed:
        _execute(dss_url=dss_url)
    assert failed.value.ename == "ConfigurationError"
    error = failed.value.evalue  # what the user reads under the traceback
    assert "Fix: Set DSS_URL in the first cell to your DSS address as users open it, e.g. https://dss.example.org." \
        in error
    assert "--dss-url" not in error and "Pass " not in error
    assert ("DSS_URL is empty" if dss_url is None else "is not an http(s) URL") in error


def test_every_billed_call_sits_behind_its_flag_from_the_first_cell():
    billed_calls = {"deployer.deploy(": "RUN_DEPLOY", "submit_checked(": "RUN_LORA_FINETUNE",
                    "serve_adapters(deployer": "RUN_SERVE_ADAPTERS", "execute(session": "RUN_BATCH",
                    "create_job(": "RUN_CORTEX_FINETUNE"}
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        first = _first_code_cell(notebook).source
        assert re.search(r"^RUN_BILLED_STEPS = False\b", first, re.MULTILINE)
        assert "DSS_URL = " in first
        for flag in FLAGS:
            assert re.search(rf"^{flag} = RUN_BILLED_STEPS\b", first, re.MULTILINE), flag
        code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        for call, flag in billed_calls.items():
            cells = [source for source in code if call in source]
            assert cells, call
            assert all(re.search(rf"^\s*(if|elif) (not )?{flag}:", source, re.MULTILINE) for source in cells), call
        intro = notebook.cells[0].source
        assert notebook.cells[0].cell_type == "markdown" and "RUN_BILLED_STEPS" in intro
        assert all(flag in intro for flag in FLAGS)


def test_a_missing_snowflake_connection_is_named_by_its_notebook_setting(tmp_path):
    """No session factory: the real open_session looks for a connections.toml entry that does not exist."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SNOWFLAKE_HOME", str(tmp_path))  # an empty folder: no connections.toml (snowflake-connector)
        env.setenv("SNOWFLAKE_CONNECTION_NAME", "no_such_entry")
        env.delenv("SNOWFLAKE_ACCOUNT", raising=False)
        source = NOTEBOOKS[0].read_text(encoding="utf-8")
        notebook = nbformat.reads(source, as_version=4)
        notebook.cells = [cell for cell in notebook.cells if cell.cell_type == "code"][:3]
        env.setenv("SPCS_LLM_DSS_URL", "https://dss.mycompany.com")
        env.setenv("PYTHONPATH", str(ROOT / "python-lib"))
        env.delenv("SPCS_LLM_SESSION_FACTORY", raising=False)
        with pytest.raises(CellExecutionError) as failed:
            NotebookClient(notebook, timeout=180, kernel_name="python3",
                           resources={"metadata": {"path": str(NOTEBOOKS[0].parent)}}).execute()
    assert failed.value.ename == "DeploymentError"
    error = failed.value.evalue  # what the user reads under the traceback
    assert "'no_such_entry' (SNOWFLAKE_CONNECTION)" in error
    assert "set SNOWFLAKE_CONNECTION in the first cell to an entry of ~/.snowflake/connections.toml" in error
    assert "--connection" not in error and "--dss-connection" not in error
