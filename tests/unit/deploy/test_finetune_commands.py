"""``spcs-llm finetune``: arguments checked before connecting, the job submitted, its report and the next step."""

from __future__ import annotations

import argparse

import fake_snowflake
import pytest
from fake_jobs import JobOutcome
from fake_tables import add_table

from spcs_llm.cli import services_run as handlers
from spcs_llm.cli.finetune import next_step, register
from spcs_llm.core.errors import ConfigurationError, ServiceFailedError
from spcs_llm.deploy.session import SESSION_FACTORY_ENV

REPORT = {"adapter_location": "@SPCS_LLM.MODELS.ADAPTERS/colors", "base_model": "HuggingFaceH4/zephyr-7b-beta",
          "examples": 2, "steps": 2, "losses": [2.0, 0.5], "seconds": 12.0}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spcs-llm")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse(argv)
    return args.handler(args)


@pytest.fixture
def cli_session(monkeypatch, session):
    add_table(session.account, "PAIRS", ["INSTRUCTION", "OUTPUT"], [{"INSTRUCTION": "a", "OUTPUT": "b"}] * 2)
    session.ml_jobs.next_outcome = JobOutcome(value=REPORT)
    monkeypatch.setenv(SESSION_FACTORY_ENV, "fake_snowflake:session_from_environment")
    fake_snowflake.ACTIVE.append(session)
    yield session
    fake_snowflake.ACTIVE.remove(session)


def test_finetune_waits_and_prints_the_losses_the_adapter_and_the_next_step(cli_session, capsys):
    assert run(["finetune", "zephyr-7b-beta", "--yes", "--table", "PAIRS", "--output-stage", "@ADAPTERS/colors",
                "--rank", "4", "--max-steps", "20"]) == 0
    out = capsys.readouterr().out
    (job_id,) = cli_session.ml_jobs.jobs
    assert f"Submitted fine-tuning job {job_id} on SPCS_LLM_GPU_POOL (2 pairs)." in out
    assert "The adapter will be saved to @SPCS_LLM.MODELS.ADAPTERS/colors" in out
    assert "Cost: pool SPCS_LLM_GPU_POOL (GPU_NV_S) bills 0.57 credits/h" in out and "20 steps" in out
    assert "2 steps on 2 pairs, loss 2.0000 -> 0.5000." in out and "Billed about 0.047 credits" in out
    assert ("Next: serve it with `spcs-llm serve-adapters zephyr-7b-beta --adapter "
            "colors=@SPCS_LLM.MODELS.ADAPTERS/colors`.") in out
    args = cli_session.ml_jobs.jobs[job_id].args
    assert args[args.index("--rank") + 1] == "4" and args[args.index("--max-steps") + 1] == "20"


def test_no_wait_prints_the_job_id_and_how_to_attach_later(cli_session, capsys):
    assert run(["finetune", "zephyr-7b-beta", "--yes", "--table", "PAIRS", "--no-wait"]) == 0
    out = capsys.readouterr().out
    (job_id,) = cli_session.ml_jobs.jobs
    assert f"Wait for it with: spcs-llm finetune --attach {job_id}" in out and "loss" not in out
    assert not any("spcs_wait_for" in s for s in cli_session.statements)

    assert run(["finetune", "--attach", job_id]) == 0
    assert "loss 2.0000 -> 0.5000" in capsys.readouterr().out


def test_the_cost_comes_first_and_nothing_is_submitted_unless_confirmed(cli_session, capsys, monkeypatch):
    args = parse(["finetune", "zephyr-7b-beta", "--table", "PAIRS", "--max-steps", "20"])
    monkeypatch.setattr(handlers, "interactive", lambda: False)
    with pytest.raises(ConfigurationError, match="no terminal to confirm") as refused:
        args.handler(args)
    assert "--yes" in refused.value.fix
    monkeypatch.setattr(handlers, "interactive", lambda: True)
    with pytest.raises(ConfigurationError, match="not confirmed; nothing was run"):
        args.handler(args, ask=lambda _question: "n")
    assert not cli_session.ml_jobs.jobs
    out = capsys.readouterr().out
    assert "zephyr-7b-beta: 2 pairs, 20 steps on SPCS_LLM_GPU_POOL." in out and "bills 0.57 credits/h" in out
    assert args.handler(args, ask=lambda _question: "y") == 0 and len(cli_session.ml_jobs.jobs) == 1


def test_a_failed_job_raises_with_its_log(cli_session):
    cli_session.ml_jobs.next_outcome = JobOutcome(status="FAILED", error=RuntimeError("boom"), logs="Traceback\nboom")
    with pytest.raises(ServiceFailedError, match="ended FAILED: Traceback | boom"):
        run(["finetune", "zephyr-7b-beta", "--yes", "--table", "PAIRS"])


@pytest.mark.parametrize("argv, message", [
    (["finetune", "zephyr-7b-beta"], "exactly one of a table or a stage file"),
    (["finetune"], "Give a model to fine-tune, or --attach"),
    (["finetune", "zephyr-7b-beta", "--attach", "X"], "Give a model to fine-tune, or --attach"),
    (["finetune", "bge-small-en-v1.5", "--table", "T"], "not a catalog chat model"),
    (["finetune", "zephyr-7b-beta", "--table", "T", "--rank", "0"], "rank and alpha must be positive"),
    (["finetune", "zephyr-7b-beta", "--stage-file", "pairs.jsonl"], "--stage-file 'pairs.jsonl' is not a stage path"),
    (["finetune", "zephyr-7b-beta", "--table", "T", "--compute-pool", "a-b"], "not a plain Snowflake identifier"),
])
def test_arguments_are_checked_before_any_connection(monkeypatch, argv, message):
    def no_session(_args):
        raise AssertionError("a session was opened")

    monkeypatch.setattr("spcs_llm.cli.finetune.session_for", no_session)
    with pytest.raises(ConfigurationError, match=message):
        run(argv)


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        parse(["finetune", "--help"])
    text = capsys.readouterr().out
    for option in ("--table", "--stage-file", "--instruction-column", "--input-column", "--output-column",
                   "--output-stage", "--rank", "--alpha", "--learning-rate", "--max-steps", "--compute-pool",
                   "--no-wait", "--attach", "--connection", "--gpu-pool"):
        assert option in text
    assert "zephyr-7b-beta" in text and "phi-2" not in text and "all-minilm" not in text



def test_the_next_step_names_an_adapter_the_serve_command_accepts():
    from spcs_llm.deploy.adapters.registration import parse_adapter

    line = next_step("HuggingFaceH4/zephyr-7b-beta", "@DB.S.ADAPTERS/2024-run.v1/")
    assert "spcs-llm serve-adapters zephyr-7b-beta --adapter adapter_2024_run_v1=@DB.S.ADAPTERS/2024-run.v1/" in line
    assert parse_adapter(line.split("--adapter ")[1].rstrip("`.")).alias == "adapter_2024_run_v1"
    assert "<base model>" in next_step("@DB.S.MODELS/zephyr", "@DB.S.ADAPTERS/run")


def test_the_printed_next_step_serves_the_trained_adapter(cli_session, capsys):
    from spcs_llm.cli.adapters import register as register_serve_adapters

    cli_session.account.lora_adapters_enabled = True
    cli_session.account.next_statuses = ["RUNNING"]
    cli_session.ml_jobs.next_outcome = JobOutcome()  # the adapter files the entry script would save
    assert run(["finetune", "zephyr-7b-beta", "--yes", "--table", "PAIRS", "--output-stage", "@ADAPTERS/colors"]) == 0
    command = capsys.readouterr().out.split("Next: serve it with `spcs-llm ")[1].split("`")[0].split()

    parser = argparse.ArgumentParser(prog="spcs-llm")
    register_serve_adapters(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(command)
    assert args.handler(args) == 0
    assert "colors" in capsys.readouterr().out
