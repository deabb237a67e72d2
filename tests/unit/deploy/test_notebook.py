"""The deployment notebook runs top to bottom against the fake session, so it cannot drift from the library.

It runs once per module (in its own kernel) against ``fake_notebook_account``: an account with LoRA adapters
enabled, the training-pairs and bulk-inference tables the notebook's settings name, and the ML jobs and batch fakes.
Each test then checks one part of what the cells printed, so a broken section names itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import fake_notebook_account

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SECTIONS = ["Fine-tune a LoRA adapter (Snowflake ML job on the GPU pool)", "Serve the fine-tuned model",
            "Bulk inference over a table", "Fine-tune with Snowflake Cortex (hosted)", "Teardown"]


def _text_outputs(notebook) -> str:
    return "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.get("outputs", []))


@pytest.fixture(scope="module")
def out() -> str:
    """What every code cell printed (a failing cell fails here, with its traceback)."""
    printed = []
    with pytest.MonkeyPatch.context() as env:
        # The kernel is a separate process: it finds the fake through the session-factory hook the CLI uses.
        env.setenv("SPCS_LLM_SESSION_FACTORY", "fake_notebook_account:session")
        env.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "python-lib"), str(Path(__file__).parent)]))
        env.setenv("HF_HUB_OFFLINE", "1")
        env.setenv("SPCS_LLM_DSS_URL", "https://dss.mycompany.com")
        env.setenv("SPCS_LLM_CONFIRM_TEARDOWN", "SPCS_LLM")
        env.delenv("SPCS_LLM_SMOKE_PAT", raising=False)
        for path in NOTEBOOKS:
            notebook = nbformat.read(path, as_version=4)
            NotebookClient(notebook, timeout=180, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            printed.append(_text_outputs(notebook))
    return "\n".join(printed)


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
    sql = out.index("SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'SPCS_LLM.MODELS.SUPPORT_TONE_CORTEX', 'mistral-7b', ",
                    unknown)
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
