"""``spcs-llm cortex-finetune``: --sql-only runs nothing, confirmation (refused off a terminal), the whole run to the
settings to paste, --attach and --cancel."""

from __future__ import annotations

import argparse

import fake_cortex_finetune
import fake_snowflake
import pytest
from fake_cortex_finetune import finetune_state
from fake_tables import add_table

from spcs_llm.cli import cortex_finetune as cortex_finetune_commands
from spcs_llm.cli import services_run as handlers
from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.deploy.cortex_finetune import job as cortex_finetune_job
from spcs_llm.deploy.cortex_finetune.plan import FINETUNE_BASE_MODELS
from spcs_llm.deploy.session import SESSION_FACTORY_ENV

assert fake_cortex_finetune  # its handlers answer the FINETUNE statements

BASE = ["cortex-finetune", "SUPPORT_TUNED", "--base-model", "mistral-7b", "--training-table", "TRAIN"]


@pytest.fixture
def cli_session(monkeypatch, session, account):
    add_table(account, "SPCS_LLM.MODELS.TRAIN", ["PROMPT", "COMPLETION"],
              [{"PROMPT": "2+2?", "COMPLETION": "4"}, {"PROMPT": "hi", "COMPLETION": "hello"}])
    monkeypatch.setenv(SESSION_FACTORY_ENV, "fake_snowflake:session_from_environment")
    monkeypatch.setattr(cortex_finetune_job.time, "sleep", lambda _: None)
    fake_snowflake.ACTIVE.append(session)
    yield session
    fake_snowflake.ACTIVE.remove(session)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cortex_finetune_commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def _finetune_calls(session) -> list[str]:
    return [s for s in session.statements if "CORTEX.FINETUNE" in s]


@pytest.mark.parametrize("flag", ["--dry-run", "--sql-only"])
def test_dry_run_prints_the_sql_without_a_session(monkeypatch, capsys, flag):
    monkeypatch.setenv(SESSION_FACTORY_ENV, "no_such_module:nothing")  # opening a session would fail loudly
    args = _args(*BASE, "--max-epochs", "2", "--training-credits-per-million", "1", flag)
    assert args.handler(args) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("-- Dry run of `spcs-llm cortex-finetune SUPPORT_TUNED`")
    assert lines[1] == ("-- mistral-7b fine-tuned on SPCS_LLM.MODELS.TRAIN (<rows: counted on the account>) → "
                        "SPCS_LLM.MODELS.SUPPORT_TUNED")
    assert "1 credits per million training tokens" in lines[2]
    create = lines.index(next(line for line in lines if line.startswith("SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE'")))
    assert lines[create - 1].startswith("USE SCHEMA SPCS_LLM.MODELS;")
    # the form the FINETUNE ('CREATE') page documents: the name an identifier, the options a JSON string
    assert lines[create].startswith("SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'SUPPORT_TUNED', 'mistral-7b', ")
    assert lines[create].endswith(""", NULL, '{"max_epochs": 2}');""")


def test_dry_run_of_cancel_prints_the_statement_only(monkeypatch, capsys):
    monkeypatch.setenv(SESSION_FACTORY_ENV, "no_such_module:nothing")
    args = _args("cortex-finetune", "--cancel", "CortexFineTuningWorkflow_0001", "--dry-run")
    assert args.handler(args) == 0
    assert ("SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL', 'CortexFineTuningWorkflow_0001');"
            in capsys.readouterr().out)


@pytest.mark.parametrize(("extra", "message"), [
    (("--base-model", "gpt-5"), "Base model 'gpt-5' cannot be fine-tuned with Cortex"),
    (("--training-table", "bad name;"), "Training table 'bad name;' is not a table name"),
    (("--validation-table", "a.b.c.d"), "Validation table 'a.b.c.d' is not a table name"),
    (("--prompt-column", "bad col"), "Column 'bad col' is not a column name"),
    (("--max-epochs", "11"), "--max-epochs must be 1 to 10"),
    (("--dollars-per-credit", "0"), "--dollars-per-credit must be above 0"),
    (("--poll-interval", "0"), "--poll-interval and --timeout must be above 0"),
    (("--database", "bad-db"), "database = 'BAD-DB' is not a plain Snowflake identifier"),
])
@pytest.mark.parametrize("dry_run", [(), ("--dry-run",)])
def test_bad_arguments_are_refused_before_any_session(monkeypatch, extra, message, dry_run):
    monkeypatch.setattr(cortex_finetune_commands, "session_for", lambda args: pytest.fail("a session was opened"))
    args = _args(*BASE, *extra, *dry_run)
    with pytest.raises(ConfigurationError) as caught:
        args.handler(args)
    assert message in caught.value.message and caught.value.fix


def test_an_unknown_base_model_lists_the_valid_ones(monkeypatch):
    monkeypatch.setattr(cortex_finetune_commands, "session_for", lambda args: pytest.fail("a session was opened"))
    args = _args("cortex-finetune", "T", "--base-model", "gpt-5", "--training-table", "TRAIN")
    with pytest.raises(ConfigurationError) as caught:
        args.handler(args)
    assert all(model in caught.value.message for model in FINETUNE_BASE_MODELS)
    assert "--base-model" in caught.value.fix


def test_without_a_terminal_and_without_yes_it_refuses_and_starts_nothing(cli_session, monkeypatch):
    monkeypatch.setattr(handlers, "interactive", lambda: False)
    args = _args(*BASE)
    with pytest.raises(ConfigurationError, match="no terminal to confirm it on") as caught:
        args.handler(args)
    assert "--yes" in caught.value.fix and "--dry-run" in caught.value.fix
    assert _finetune_calls(cli_session) == []


def test_a_no_on_the_terminal_starts_nothing(cli_session, monkeypatch):
    monkeypatch.setattr(handlers, "interactive", lambda: True)
    args = _args(*BASE)
    with pytest.raises(ConfigurationError, match="not confirmed"):
        args.handler(args, ask=lambda question: "n")
    assert _finetune_calls(cli_session) == []


def test_with_yes_it_runs_to_the_end_and_prints_the_model_and_the_settings(cli_session, capsys):
    args = _args(*BASE, "--yes", "--poll-interval", "5")
    assert args.handler(args) == 0

    captured = capsys.readouterr()
    job_id = "CortexFineTuningWorkflow_0001"
    assert f"Fine-tuning job started: {job_id}" in captured.out
    assert "Fine-tuned model: SPCS_LLM.MODELS.SUPPORT_TUNED" in captured.out
    assert "Model (model): SPCS_LLM.MODELS.SUPPORT_TUNED" in captured.out
    assert "Snowflake account URL (account_url): https://org-acct.snowflakecomputing.com" in captured.out
    assert "0.05 / 0.05 (the mistral-7b rate" in captured.out
    assert captured.err.splitlines() == [f"{job_id}: PENDING", f"{job_id}: IN_PROGRESS, 50%, 1,200 tokens trained",
                                         f"{job_id}: SUCCESS, 100%, 2,400 tokens trained"]


def test_no_wait_prints_how_to_attach(cli_session, capsys):
    args = _args(*BASE, "--yes", "--no-wait")
    assert args.handler(args) == 0
    assert "spcs-llm cortex-finetune --attach CortexFineTuningWorkflow_0001" in capsys.readouterr().out
    assert not any("'DESCRIBE'" in s for s in cli_session.statements)


def test_attach_follows_a_started_job_to_its_settings(cli_session, capsys):
    start = _args(*BASE, "--yes", "--no-wait")
    start.handler(start)
    capsys.readouterr()

    args = _args("cortex-finetune", "--attach", "CortexFineTuningWorkflow_0001")
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "Fine-tuned model: SPCS_LLM.MODELS.SUPPORT_TUNED" in out and "0.05 / 0.05 (the mistral-7b rate" in out


def test_cancel_needs_yes_off_a_terminal_then_cancels(cli_session, monkeypatch, capsys):
    start = _args(*BASE, "--yes", "--no-wait")
    start.handler(start)
    monkeypatch.setattr(handlers, "interactive", lambda: False)
    monkeypatch.setattr(cortex_finetune_commands, "interactive", lambda: False)

    refused = _args("cortex-finetune", "--cancel", "CortexFineTuningWorkflow_0001")
    with pytest.raises(ConfigurationError, match="needs confirmation"):
        refused.handler(refused)
    assert not any("'CANCEL'" in s for s in cli_session.statements)

    args = _args("cortex-finetune", "--cancel", "CortexFineTuningWorkflow_0001", "--yes")
    assert args.handler(args) == 0
    assert "Canceled Cortex Fine-tuning job: CortexFineTuningWorkflow_0001" in capsys.readouterr().out
    assert finetune_state(cli_session.account).jobs["CortexFineTuningWorkflow_0001"].cancelled


def test_missing_arguments_name_what_to_pass(cli_session):
    args = _args("cortex-finetune", "SUPPORT_TUNED")
    with pytest.raises(ConfigurationError, match="needs --base-model, --training-table") as caught:
        args.handler(args)
    assert "--attach" in caught.value.fix and cli_session.statements == []


def test_prompt_columns_map_the_instruction_input_output_shape(cli_session, account, capsys):
    add_table(account, "SPCS_LLM.MODELS.ALPACA", ["INSTRUCTION", "INPUT", "OUTPUT"],
              [{"INSTRUCTION": "Translate", "INPUT": "chat", "OUTPUT": "cat"}])
    args = _args("cortex-finetune", "T", "--base-model", "llama3.1-70b", "--training-table", "ALPACA",
                 "--prompt-columns", "INSTRUCTION,INPUT", "--completion-column", "OUTPUT", "--dry-run")
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "ARRAY_CONSTRUCT_COMPACT(NULLIF(TRIM(\"INSTRUCTION\")" in out and "\"OUTPUT\" AS completion" in out
    assert "the base model's training rate (not given)" in out
    assert cli_session.statements == []


def test_attach_to_a_success_without_a_model_name_says_where_to_look(cli_session):
    start = _args(*BASE, "--yes", "--no-wait")
    start.handler(start)
    finetune_state(cli_session.account).jobs["CortexFineTuningWorkflow_0001"].script = [{"status": "SUCCESS",
                                                                                         "model": ""}]
    args = _args("cortex-finetune", "--attach", "CortexFineTuningWorkflow_0001")
    with pytest.raises(DeploymentError, match="succeeded but names no model") as caught:
        args.handler(args)
    assert "SHOW MODELS" in caught.value.fix
