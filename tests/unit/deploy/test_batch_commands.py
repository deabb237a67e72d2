"""``spcs-llm batch``: the estimate before anything runs, --sql-only, confirmation, exit status on failed rows."""

from __future__ import annotations

import argparse

import pytest

import fake_batch
import fake_snowflake
from fake_batch import batch_state
from fake_tables import add_table
from spcs_llm.deploy import batch_commands, handlers
from spcs_llm.deploy.session import SESSION_FACTORY_ENV
from spcs_llm.errors import ConfigurationError

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


def test_sql_only_prints_the_estimate_and_the_sql_and_runs_nothing(cli_session, capsys):
    args = _args("--mode", "job", "--replicas", "2", "--sql-only")
    assert args.handler(args) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == ("zephyr-7b-beta over SPCS_LLM.MODELS.REVIEWS (3 rows) → SPCS_LLM.MODELS.ANSWERS: job on "
                        "SPCS_LLM_GPU_POOL, engine vllm")
    assert lines[1].startswith("Estimate (not a quote): 3 rows × 0.2 s/row") and "credits" in lines[1]
    assert "EXECUTE INFERENCE JOB SERVICE" in out and "REPLICAS = 2" in out
    assert "RESPONSE:choices[0]:message:content::VARCHAR AS REPLY" in out
    assert not _writes(cli_session)


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


def test_bad_numbers_are_refused_before_a_session_opens(monkeypatch):
    monkeypatch.setenv(SESSION_FACTORY_ENV, "no_such_module:nothing")
    for flag in ("--replicas", "--chunk-rows"):
        args = _args(flag, "0")
        with pytest.raises(ConfigurationError, match=f"{flag} must be at least 1"):
            args.handler(args)
