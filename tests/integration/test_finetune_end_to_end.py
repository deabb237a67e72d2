"""The whole fine-tuning path on one laptop: train → log → deploy → serve → ask, through the real code at each step.

1. ``finetune_lora`` (the function the Snowflake ML job runs) trains an adapter of the tiny chat model;
2. ``serve_adapters`` logs it with snowflake-ml's real ``PeftAdapter`` / ``log_model`` and deploys base + adapter
   with ``create_service(adapters=…)`` on vLLM, against the recording fake session (tests/unit/deploy);
3. the adapter files snowflake-ml uploaded are what the stand-in serves (``spcs-llm local --adapter``);
4. the settings the deployment printed, pointed at the stand-in, drive the real chat component: the fine-tuned
   model gives the trained answer, the base model does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.deploy import CATALOG, Deployer, DeployOptions, WaitSettings
from spcs_llm.deploy.adapters.registration import AdapterRequest
from spcs_llm.deploy.adapters.serving import adapter_service_spec, serve_adapters
from spcs_llm.deploy.finetune.training import LoraSettings, TrainingExample, finetune_lora
from spcs_llm.deploy.services.connection import connection_settings
from spcs_standin.harness import load_component
from spcs_standin.stack import LocalStack
from spcs_standin.tinychat import CANNED_EXCHANGES, SYSTEM_PROMPT, chat_messages, chat_model_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "deploy"))
from fake_snowflake import FakeAccount, RecordingSession
from fake_snowflake_seams import snowflake_seams

ALIAS = "arithmetic"
# An answer made of words the tiny model already says (a frozen-embedding LoRA cannot make new tokens win).
PAIR = TrainingExample(instruction="What is 2+2?", output="The capital of France is 4.")
SETTINGS = LoraSettings(learning_rate=1e-2, max_steps=200, system_prompt=SYSTEM_PROMPT, stop_margin=4.0)
GREEDY = {"temperature": 0, "maxOutputTokens": 32}
# The settings that only make sense for the real service: the connector is pointed at the stand-in instead.
REPLACED_SETTINGS = ("endpoint", "auth_type")
pytestmark = pytest.mark.filterwarnings("ignore:It is impossible to validate your model signatures")


@pytest.fixture()
def account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    account = FakeAccount(next_statuses=["RUNNING"], lora_adapters_enabled=True)
    for _ in snowflake_seams(monkeypatch, account, tmp_path):  # the seams stay patched while the test runs
        yield account


def _received_adapter(account: FakeAccount, model_name: str, folder: Path) -> Path:
    """The adapter files as snowflake-ml uploaded them to the registry stage for ``model_name``."""
    marker = f"/models/{model_name}/adapter/"
    for path, data in account.uploaded.items():
        if marker in path:
            (folder / path.split(marker, 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.split(marker, 1)[1]).write_bytes(data)
    return folder


def test_a_fine_tuned_adapter_goes_from_training_to_a_dss_answer(account, tmp_path, pat_factory):
    trained = finetune_lora(chat_model_dir(), [PAIR], tmp_path / "trained", SETTINGS)
    # Trained: every answer token of the saved adapter wins by the stop margin (so the greedy reply below is the
    # trained answer on any CPU), and the loss over the last check window, not one step's, fell tenfold.
    assert trained.margin is not None and trained.margin >= SETTINGS.stop_margin
    assert min(trained.losses[-SETTINGS.check_every:]) < trained.losses[0] / 10

    ticks = iter(range(0, 100_000, 5))
    deployer = Deployer(RecordingSession(account), sleep=lambda _s: None, clock=lambda: next(ticks))
    spec = adapter_service_spec(CATALOG["zephyr-7b-beta"])
    options = DeployOptions(wait=WaitSettings(timeout_s=60, poll_interval_s=5))
    deployment = serve_adapters(deployer, spec, [AdapterRequest(ALIAS, str(trained.adapter_dir))], options)
    assert account.deploy_specs[-1]["service"]["adapters"][0]["alias"] == ALIAS
    printed = connection_settings(deployment.adapters[0])
    assert (printed["engine"], printed["adapter"]) == ("vllm", ALIAS)

    received = _received_adapter(account, ALIAS.upper(), tmp_path / "received")
    assert (received / "adapter_model.safetensors").read_bytes() == (
        trained.adapter_dir / "adapter_model.safetensors").read_bytes()
    with LocalStack.start(extra_args=("--adapter", f"{ALIAS}={received}")) as stack:
        preset = pat_factory(stack)
        shown = {key: value for key, value in printed.items() if key not in REPLACED_SETTINGS}
        base_settings = {key: value for key, value in shown.items() if key != "adapter"}
        tuned = load_component("spcs-chat", {**shown, "endpoint": stack.service_url("chat_lora"), **preset})
        base = load_component("spcs-chat", {**base_settings, "endpoint": stack.service_url("chat_lora"), **preset})
        question = {"messages": chat_messages(PAIR.instruction)}
        tuned_answer = tuned.process(question, GREEDY, SpanBuilder("test"))["text"]
        base_answer = base.process(question, GREEDY, SpanBuilder("test"))["text"]

    assert tuned_answer == PAIR.output
    assert base_answer == next(e.answer for e in CANNED_EXCHANGES if e.question == PAIR.instruction) != tuned_answer


@pytest.fixture()
def pat_factory():
    def preset(stack: LocalStack) -> dict:
        return {"auth_type": "service", "service_preset": {
            "service_auth": "pat", "pat": stack.issue_pat(), "account_url": stack.account_url,
            "account_identifier": "LOCALTEST", "role": "SPCS_LLM_USER"}}

    return preset
