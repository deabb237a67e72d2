"""``--dry-run`` on every command that runs something, and the offline checks: none of them opens a session.

The session factory (``SPCS_LLM_SESSION_FACTORY``, deploy/session.py) points at ``refuse_session`` below, which
records the attempt and raises, so a preview or a refused argument that reached for Snowflake fails the test.
"""

from __future__ import annotations

import pytest

from spcs_llm.cli import main
from spcs_llm.deploy.session import SESSION_FACTORY_ENV

OPENED: list[str] = []


def refuse_session() -> None:
    OPENED.append("session")
    raise AssertionError("a Snowflake session was opened")


@pytest.fixture(autouse=True)
def no_session(monkeypatch):
    OPENED.clear()
    monkeypatch.syspath_prepend(__file__.rsplit("/", 1)[0])
    monkeypatch.setenv(SESSION_FACTORY_ENV, "test_dry_run_commands:refuse_session")
    yield
    assert OPENED == []


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_session_guard_itself_fails_when_a_command_opens_one(capsys):
    assert main(["status"]) == 1
    assert OPENED == ["session"]
    OPENED.clear()


def test_deploy_dry_run_prints_the_calls_and_the_settings_with_placeholders(capsys):
    code, out, _ = _run(["deploy", "zephyr-7b-beta", "--dry-run", "--max-instances", "2"], capsys)
    assert code == 0
    assert out.startswith("-- Dry run of `spcs-llm deploy zephyr-7b-beta`: nothing was sent to Snowflake")
    assert "SHOW COMPUTE POOLS LIKE 'SPCS_LLM_GPU_POOL';" in out
    assert "huggingface.TransformersPipeline(\n        'HuggingFaceH4/zephyr-7b-beta'," in out
    assert "model_version.create_service(" in out and "    max_instances=2," in out
    assert "inference_engine_options={'engine': 'vllm'" in out
    assert "GRANT SERVICE ROLE SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC!ALL_ENDPOINTS_USAGE TO ROLE SPCS_LLM_USER;" in out
    assert "Endpoint:" in out and "https://<ingress host: known after deploy>" in out
    assert "credits/h" in out  # the estimate is shown, nothing is billed


def test_serve_adapters_dry_run_logs_each_adapter_and_attaches_it(capsys):
    code, out, _ = _run(["serve-adapters", "zephyr-7b-beta", "--adapter", "tone=@SPCS_LLM.MODELS.ADAPTERS/run1",
                         "--dry-run"], capsys)
    assert code == 0
    assert "huggingface.PeftAdapter(" in out and "model_name='TONE'" in out
    assert "adapters={'tone': tone}" in out and "ZEPHYR_7B_BETA_LORA_SVC" in out
    assert "LoRA adapter:" in out and "<ingress host: known after deploy>" in out


def test_finetune_dry_run_prints_the_checks_and_the_submit_call(capsys):
    code, out, _ = _run(["finetune", "zephyr-7b-beta", "--table", "PAIRS", "--max-steps", "20", "--dry-run"], capsys)
    assert code == 0
    assert "DESCRIBE TABLE SPCS_LLM.MODELS.PAIRS;" in out and "SHOW COMPUTE POOLS LIKE 'SPCS_LLM_GPU_POOL';" in out
    assert "job = snowflake.ml.jobs.submit_file(" in out and "'--max-steps', '20'" in out
    assert "external_access_integrations=['SPCS_LLM_EGRESS_EAI']" in out


@pytest.mark.parametrize("argv", [["teardown"], ["teardown", "--dry-run"], ["teardown", "--dry-run", "--keep-models"]])
def test_teardown_prints_its_sql_without_a_session(capsys, argv):
    code, out, _ = _run(argv, capsys)
    assert code == 0 and "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL;" in out


def test_teardown_dry_run_and_execute_together_are_refused(capsys):
    code, _, err = _run(["teardown", "--dry-run", "--execute", "--yes"], capsys)
    assert code == 1 and "--dry-run and --execute contradict each other. Fix:" in err


def test_setup_sql_opens_no_session(capsys):
    code, out, _ = _run(["setup-sql", "--dss-url", "https://dss.acme.io"], capsys)
    assert code == 0 and "CREATE COMPUTE POOL" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["deploy", "not a model"], "neither a catalog model nor a Hugging Face id"),
    (["deploy", "phi-2", "--model-name", "bad-name"], "is not a plain Snowflake identifier"),
    (["deploy", "phi-2", "--gpu-pool", "bad pool"], "is not a plain Snowflake identifier"),
    (["deploy", "phi-2", "--max-instances", "0"], "max_instances"),
    (["deploy", "phi-2", "--batch-rows", "8"], "max_batch_rows must be at least 32"),
    (["deploy", "phi-2", "--timeout", "0"], "--timeout must be above 0"),
    (["deploy", "phi-2", "--dollars-per-credit", "-1"], "--dollars-per-credit must be above 0"),
    (["serve-adapters", "zephyr-7b-beta", "--adapter", "tone=@S.A.B/x", "--version", "v-1"],
     "must be plain identifiers"),
    (["serve-adapters", "zephyr-7b-beta", "--adapter", "tone=@S.A.B/x", "--poll-interval", "-5"],
     "--poll-interval cannot be negative"),
    (["finetune", "zephyr-7b-beta", "--table", "bad name;"], "is not a table name"),
    (["finetune", "zephyr-7b-beta", "--table", "PAIRS", "--rank", "0"], "LoRA rank and alpha must be positive"),
    (["finetune", "zephyr-7b-beta", "--table", "PAIRS", "--compute-pool", "bad pool"],
     "is not a plain Snowflake identifier"),
    (["finetune", "zephyr-7b-beta", "--table", "PAIRS", "--dollars-per-credit", "0"],
     "--dollars-per-credit must be above 0"),
    (["finetune", "not-a-model", "--table", "PAIRS"], "is not a catalog chat model"),
    (["cortex-finetune", "T", "--base-model", "gpt-5", "--training-table", "TRAIN"],
     "cannot be fine-tuned with Cortex"),
    (["batch", "phi-2", "--input-table", "bad name;", "--text-column", "T", "--output-table", "O"],
     "Input table 'bad name;' is not a table name"),
])
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_offline_checks_come_before_any_session(capsys, argv, message, dry_run):
    code, _, err = _run(argv + dry_run, capsys)
    assert code == 1
    assert err.count("\n") == 1 and message in err and ". Fix: " in err
