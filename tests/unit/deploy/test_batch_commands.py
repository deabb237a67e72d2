"""``spcs-llm batch``: the estimate before anything runs, --sql-only, confirmation, exit status on failed rows."""

from __future__ import annotations

import argparse
import re

import fake_batch
import fake_snowflake
import pytest
from fake_batch import batch_state
from fake_tables import add_table

from spcs_llm.cli import batch as batch_commands
from spcs_llm.cli import services_run as handlers
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.session import SESSION_FACTORY_ENV

BASE = ["batch", "zephyr-7b-beta", "--input-table", "REVIEWS", "--text-column", "REVIEW", "--output-table", "ANSWERS"]


@pytest.fixture(autouse=True)
def _batch_jobs_answered_first(session):
    """fake_jobs.py, when imported too, installs its own ``session._conn``; batch job statements come first."""
    fake_batch.attach_job_connection(session)


@pytest.fixture
def cli_session(monkeypatch, session, account):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    add_table(account, "SPCS_LLM.MODELS.REVIEWS", {"REVIEW": "VARCHAR"}, [{"REVIEW": f"text {i}"} for i in range(3)])
    monkeypatch.setenv(SESSION_FACTORY_ENV, "fake_snowflake:session_from_environment")
    fake_snowflake.ACTIVE.append(session)
    yield session
    fake_snowflake.ACTIVE.remove(session)


def _args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    batch_commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args([*BASE, *extra])


def _writes(session):
    return [s for s in session.statements if s.split()[0] in ("CREATE", "INSERT", "COPY", "EXECUTE")]


@pytest.mark.parametrize("flag", ["--dry-run", "--sql-only"])
def test_dry_run_prints_the_sql_and_the_run_batch_call_without_a_session(monkeypatch, capsys, flag):
    monkeypatch.setenv(SESSION_FACTORY_ENV, "no_such_module:nothing")  # opening a session would fail loudly
    args = _args("--mode", "job", "--replicas", "2", "--max-tokens", "50", flag)
    assert args.dry_run and args.handler(args) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("-- Dry run of `spcs-llm batch zephyr-7b-beta`: nothing was sent to Snowflake")
    assert lines[1] == ("-- zephyr-7b-beta over SPCS_LLM.MODELS.REVIEWS (<rows: counted on the account>) → "
                        "SPCS_LLM.MODELS.ANSWERS: job path, engine vllm")
    assert "job = model_version.run_batch(" in out and "    replicas=2" in out and "'max_completion_tokens': 50" in out
    assert "    compute_pool='SPCS_LLM_GPU_POOL'," in out
    assert "COPY INTO @SPCS_LLM.MODELS.SPCS_LLM_BATCH/<run id: UTC time of the run>/input/" in out
    assert "RESPONSE:choices[0]:message:content::VARCHAR AS REPLY" in out
    assert "INSERT INTO SPCS_LLM.MODELS.ANSWERS" in out and "!__CALL__" not in out  # job path only


def test_dry_run_in_auto_mode_shows_both_paths(monkeypatch, capsys):
    monkeypatch.setenv(SESSION_FACTORY_ENV, "no_such_module:nothing")
    args = _args("--dry-run")
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "service path if SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC is live and the table has under 10,000 rows" in out
    assert "SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC!__CALL__(" in out and "model_version.run_batch(" in out


def test_sql_only_is_an_alias_of_dry_run_in_the_help(capsys):
    parser = argparse.ArgumentParser()
    batch_commands.register(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["batch", "--help"])
    assert "--dry-run, --sql-only" in capsys.readouterr().out


def test_with_yes_it_runs_and_reports_every_row(cli_session, account, capsys):
    args = _args("--yes", "--system-prompt", "Be brief.")
    assert args.handler(args) == 0

    captured = capsys.readouterr()
    assert "3 rows written to SPCS_LLM.MODELS.ANSWERS" in captured.out
    assert "3/3 rows scored, 0 failed" in captured.err  # progress goes to stderr
    assert len(batch_state(account).tables["SPCS_LLM.MODELS.ANSWERS"].rows) == 3


def test_failed_rows_make_the_command_exit_1_and_say_where_they_are(cli_session, account, capsys):
    batch_state(account).failing_texts.add("text 1")
    args = _args("--yes")
    assert args.handler(args) == 1
    assert ("1 row(s) have an ERROR instead of a RESPONSE: SELECT ROW_ID, ERROR FROM SPCS_LLM.MODELS.ANSWERS WHERE "
            "ERROR IS NOT NULL;") in capsys.readouterr().out


def test_without_a_terminal_it_needs_yes(cli_session, monkeypatch):
    monkeypatch.setattr(handlers, "interactive", lambda: False)
    args = _args()
    with pytest.raises(ConfigurationError, match="no terminal to confirm") as caught:
        args.handler(args)
    assert "--yes" in caught.value.fix and not _writes(cli_session)


def test_on_a_terminal_it_asks_first(cli_session, monkeypatch, account):
    monkeypatch.setattr(handlers, "interactive", lambda: True)
    args = _args()
    with pytest.raises(ConfigurationError, match="not confirmed"):
        batch_commands.batch_command(args, ask=lambda _prompt: "n")
    assert not _writes(cli_session)
    assert batch_commands.batch_command(args, ask=lambda _prompt: "y") == 0
    assert len(batch_state(account).tables["SPCS_LLM.MODELS.ANSWERS"].rows) == 3


@pytest.mark.parametrize(("extra", "message"), [
    (("--replicas", "0"), "--replicas must be at least 1"),
    (("--chunk-rows", "0"), "--chunk-rows must be at least 1"),
    (("--max-model-len", "0"), "--max-model-len must be at least 1"),
    (("--max-tokens", "0"), "--max-tokens must be above 0"),
    (("--temperature", "3"), "--temperature must be 0 to 2"),
    (("--timeout", "0"), "--timeout must be above 0"),
    (("--poll-interval", "-1"), "--poll-interval cannot be negative"),
    (("--seconds-per-row", "0"), "--seconds-per-row must be above 0"),
    (("--text-column", "bad col"), "Text column 'bad col' is not a column name"),
    (("--output-table", "x;drop"), "Output table 'x;drop' is not a table name"),
    (("--stage", "@bad stage"), "Stage '@bad stage' is not a table name"),
    (("--adapter", "bad-name"), "Adapter 'bad-name' is not a plain Snowflake identifier"),
    (("--gpu-pool", "bad-pool"), "gpu_pool = 'BAD-POOL' is not a plain Snowflake identifier"),
    (("--engine", "python", "--adapter", "tone"), "needs the vLLM engine"),
])
@pytest.mark.parametrize("dry_run", [(), ("--dry-run",)])
def test_bad_arguments_are_refused_before_a_session_opens(monkeypatch, extra, message, dry_run):
    monkeypatch.setattr(handlers, "session_for", lambda args: pytest.fail("a session was opened"))
    monkeypatch.setattr(batch_commands, "session_for", lambda args: pytest.fail("a session was opened"))
    args = _args(*extra, *dry_run)
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        args.handler(args)
    assert caught.value.fix


def test_a_bad_input_table_is_refused_before_the_session(monkeypatch):
    monkeypatch.setattr(batch_commands, "session_for", lambda args: pytest.fail("a session was opened"))
    parser = argparse.ArgumentParser()
    batch_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["batch", "zephyr-7b-beta", "--input-table", "bad name;", "--text-column", "T",
                              "--output-table", "OUT", "--yes"])
    with pytest.raises(ConfigurationError, match="Input table 'bad name;' is not a table name") as caught:
        args.handler(args)
    assert "TABLE, SCHEMA.TABLE or DATABASE.SCHEMA.TABLE" in caught.value.fix


def test_an_unknown_model_is_refused_before_the_session(monkeypatch):
    monkeypatch.setattr(batch_commands, "session_for", lambda args: pytest.fail("a session was opened"))
    parser = argparse.ArgumentParser()
    batch_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["batch", "not a model", "--input-table", "T", "--text-column", "C",
                              "--output-table", "OUT"])
    with pytest.raises(ConfigurationError, match="neither a catalog model nor a Hugging Face id"):
        args.handler(args)
