"""Adapter logging (pinned or merged fallback) and serving base + adapters on vLLM, against recording fakes."""

from __future__ import annotations

import pytest

from spcs_llm.deploy.adapters import LoggedAdapter, deploy_with_adapters, log_adapter
from spcs_llm.deploy.catalog import CATALOG
from spcs_llm.deploy.connection import DeployedModel
from spcs_llm.errors import ConfigurationError


class RecordingRegistry:
    def __init__(self) -> None:
        self.logged: list[tuple] = []

    def log_model(self, model, *, model_name: str, version_name: str):
        self.logged.append((model, model_name, version_name))
        return f"{model_name}/{version_name}"


class RecordingVersion:
    def __init__(self) -> None:
        self.services: list[dict] = []

    def create_service(self, **kwargs) -> None:
        self.services.append(kwargs)


@pytest.fixture
def adapter_dir(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    return str(folder)


def _lora_disabled(base_version, adapter_dir):
    raise ValueError("PEFT adapter logging is unavailable because ENABLE_LORA_ADAPTERS is not enabled.")


def test_the_adapter_is_logged_pinned_to_its_base_version(adapter_dir):
    registry, base = RecordingRegistry(), RecordingVersion()
    logged = log_adapter(registry, base, adapter_dir, "TUNED", make_adapter=lambda b, d: ("peft", b, d))
    assert registry.logged == [(("peft", base, adapter_dir), "TUNED", "v1")]
    assert logged.merged is False


def test_without_lora_support_the_adapter_is_merged_and_said_so(adapter_dir, caplog):
    registry, merges = RecordingRegistry(), []
    logged = log_adapter(registry, RecordingVersion(), adapter_dir, "TUNED", base_model_dir="/base",
                         make_adapter=_lora_disabled, merge=lambda *args: merges.append(args) or args[2])
    assert merges and merges[0][:2] == ("/base", adapter_dir)
    assert registry.logged == [(merges[0][2], "TUNED", "merged")]
    assert logged.merged is True and "merged" in logged.note and "merged" in caplog.text


def test_without_lora_support_and_no_base_dir_the_error_names_the_fix(adapter_dir):
    with pytest.raises(ConfigurationError, match="base model directory"):
        log_adapter(RecordingRegistry(), RecordingVersion(), adapter_dir, "TUNED", make_adapter=_lora_disabled)


def test_a_folder_without_adapter_config_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="adapter_config.json"):
        log_adapter(RecordingRegistry(), RecordingVersion(), str(tmp_path), "TUNED")


def test_deploy_passes_adapters_and_vllm_and_prints_one_model_per_adapter():
    spec = next(spec for spec in CATALOG.values() if spec.kind == "chat")
    deployed = DeployedModel(spec=spec, model_fqn="DB.S.BASE", version="V1", service_fqn="DB.S.SVC",
                             status="READY", ingress_host="abc.snowflakecomputing.app",
                             instance_family="GPU_NV_S", caller_role="R")
    base = RecordingVersion()
    adapters = [LoggedAdapter("TUNED_A", "mv_a", False, ""), LoggedAdapter("TUNED_B", "mv_b", False, "")]
    settings = deploy_with_adapters(base, deployed, adapters, vllm_args=["--max-model-len=4096"])
    call = base.services[0]
    assert call["adapters"] == {"TUNED_A": "mv_a", "TUNED_B": "mv_b"}
    assert call["inference_engine_options"] == {"engine": "vllm", "engine_args_override": ["--max-model-len=4096"]}
    assert [(s["adapter"], s["engine"]) for s in settings] == [("TUNED_A", "vllm"), ("TUNED_B", "vllm")]
