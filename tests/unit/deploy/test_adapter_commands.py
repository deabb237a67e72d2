"""``spcs-llm serve-adapters``: arguments checked before any connection, then the real snowflake-ml code against the
recording fake session; one Dataiku settings block for the base and one per adapter."""

from __future__ import annotations

import argparse

import pytest

from spcs_llm.cli.adapters import register
from spcs_llm.core.errors import ConfigurationError

pytestmark = pytest.mark.filterwarnings("ignore:It is impossible to validate your model signatures")


@pytest.fixture(scope="module")
def trained_adapter() -> str:
    from spcs_standin.lora_engine import adapter_dir

    return str(adapter_dir())


@pytest.fixture
def opened(monkeypatch, session, account) -> list:
    """Sessions the command opened: the test's fake account, whose services come up at once."""
    account.next_statuses = ["RUNNING"]
    sessions: list = []
    monkeypatch.setattr("spcs_llm.cli.adapters.session_for",
                        lambda args: sessions.append(session) or session)
    return sessions


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spcs-llm")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve-adapters", *argv, "--poll-interval", "0"])
    return args.handler(args)


def _blocks(out: str) -> list[dict[str, str]]:
    return [{label.strip(): value.strip() for label, value in
             (line.split(": ", 1) for line in block.splitlines() if line.startswith("    ") and ": " in line)}
            for block in out.strip().split("\n\n")]


def test_prints_the_base_and_one_settings_block_per_adapter(opened, account, trained_adapter, capsys):
    account.lora_adapters_enabled = True
    assert run(["zephyr-7b-beta", "--adapter", f"support_bot={trained_adapter}",
                "--adapter", f"legal_bot={trained_adapter}", "--max-model-len", "4096"]) == 0

    base, support, legal = _blocks(capsys.readouterr().out)
    endpoint = "https://zephyr_7b_beta_lora_svc-org-acct.snowflakecomputing.app"
    assert (base["Endpoint"], base["Inference engine"], base.get("LoRA adapter")) == (endpoint, "vLLM", None)
    assert (support["Endpoint"], support["Inference engine"]) == (endpoint, "vLLM")
    assert support["LoRA adapter"] == "support_bot"
    assert legal["LoRA adapter"] == "legal_bot"
    service = account.deploy_specs[-1]["service"]
    assert [a["alias"] for a in service["adapters"]] == ["support_bot", "legal_bot"]
    assert service["inference_engine_spec"]["inference_engine_args"] == ["--max-model-len=4096"]
    assert account.grants == ["ZEPHYR_7B_BETA_LORA_SVC->SPCS_LLM_USER"]


def test_a_second_run_logs_nothing_again_and_prints_the_same_settings(opened, session, account, trained_adapter,
                                                                      capsys):
    account.lora_adapters_enabled = True
    argv = ["zephyr-7b-beta", "--adapter", f"support_bot={trained_adapter}"]
    assert run(argv) == 0
    first = _blocks(capsys.readouterr().out)
    created = len(session.statements_like("CREATE MODEL"))
    assert run(argv) == 0
    assert _blocks(capsys.readouterr().out) == first and len(first) == 2
    assert len(session.statements_like("CREATE MODEL")) == created and len(account.deploy_specs) == 1


def test_without_lora_support_the_merge_is_said_and_served_on_its_own(opened, account, trained_adapter, capsys):
    from spcs_standin.tinychat import chat_model_dir

    assert run(["zephyr-7b-beta", "--adapter", f"support_bot={trained_adapter}",
                "--base-model-dir", str(chat_model_dir())]) == 0
    captured = capsys.readouterr()
    assert "LoRA adapters are not enabled on this account" in captured.err and "merged" in captured.err
    base, merged = _blocks(captured.out)
    assert merged["Endpoint"] == "https://support_bot_svc-org-acct.snowflakecomputing.app"
    assert "LoRA adapter" not in merged and merged["Inference engine"] == "vLLM"


def test_without_lora_support_and_no_base_weights_the_error_names_the_flag(opened, trained_adapter):
    with pytest.raises(ConfigurationError, match="--base-model-dir"):
        run(["zephyr-7b-beta", "--adapter", f"support_bot={trained_adapter}"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--adapter", "support_bot"], "not NAME=LOCATION"),
    (["--adapter", "support_bot=/nowhere"], "no adapter_config.json"),
    (["--adapter", "a={adapter}", "--adapter", "A={adapter}"], "same name"),
    (["--adapter", "a={adapter}", "--max-model-len", "100000"], "exceeds the 32768-token context"),
    (["--adapter", "a={adapter}", "--gpu-memory-utilization", "1.2"], "0 < x <= 1"),
    (["--adapter", "a={adapter}", "--base-model-dir", "/nowhere"], "not a model folder"),
])
def test_bad_arguments_are_refused_before_any_connection(opened, trained_adapter, argv, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        run(["zephyr-7b-beta", *(item.format(adapter=trained_adapter) for item in argv)])
    assert caught.value.fix and opened == []


def test_help_lists_the_adapter_and_vllm_options_but_no_engine_choice(capsys):
    parser = argparse.ArgumentParser(prog="spcs-llm")
    register(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["serve-adapters", "--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--adapter", "--base-model-dir", "--max-model-len", "--tensor-parallel-size",
                                         "--replace", "--gpu-pool", "--connection"))
    assert "--engine " not in text and "--replace-version" not in text


def test_an_embedding_model_is_refused_as_a_base(opened, trained_adapter):
    with pytest.raises(ConfigurationError, match="LoRA adapters are for chat models"):
        run(["bge-small-en-v1.5", "--adapter", f"a={trained_adapter}"])
    assert opened == []
