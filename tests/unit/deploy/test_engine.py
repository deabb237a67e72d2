"""The inference engine: vLLM by default for chat models on a GPU, and its settings checked before any connection."""

from __future__ import annotations

import pytest

from spcs_llm.cli import main
from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.deploy import CATALOG, resolve_model
from spcs_llm.deploy.services.engine import EngineOptions


def test_chat_models_default_to_vllm_and_embedding_models_to_python():
    assert {spec.engine.engine for spec in CATALOG.values() if spec.kind == "chat"} == {"vllm"}
    assert {spec.engine.engine for spec in CATALOG.values() if spec.kind == "embedding"} == {"python"}
    assert resolve_model("org/chat", kind="chat", gated=False).engine.engine == "vllm"
    assert resolve_model("zephyr-7b-beta", kind="embedding").engine.engine == "python"


def test_the_settings_become_the_engine_args_override_in_order():
    spec = resolve_model("llama-3.1-8b-instruct", instance_family="GPU_NV_M", gpu_count=4, engine=EngineOptions(
        max_model_len=8192, gpu_memory_utilization=0.9, tensor_parallel_size=4, extra_args=("--enforce-eager",)))
    assert spec.engine.inference_engine_options() == {"engine": "vllm", "engine_args_override": [
        "--max-model-len=8192", "--gpu-memory-utilization=0.9", "--tensor-parallel-size=4", "--enforce-eager"]}
    assert resolve_model("zephyr-7b-beta", engine=EngineOptions("python")).engine.inference_engine_options() is None


@pytest.mark.parametrize(
    ("name", "overrides", "engine", "message"),
    [
        ("phi-2", {}, EngineOptions(max_model_len=4096), "exceeds the 2048-token context"),
        ("phi-2", {}, EngineOptions(max_model_len=0), "positive number of tokens"),
        ("phi-2", {}, EngineOptions(gpu_memory_utilization=1.5), r"0 < x <= 1"),
        ("phi-2", {}, EngineOptions(gpu_memory_utilization=0.0), r"0 < x <= 1"),
        ("phi-2", {}, EngineOptions(tensor_parallel_size=2), "needs 2 GPUs; the service requests 1"),
        ("phi-2", {"instance_family": "GPU_NV_M", "gpu_count": 3}, EngineOptions(tensor_parallel_size=3),
         "does not divide the 4 GPUs"),
        ("phi-2", {}, EngineOptions(extra_args=("--enable-lora",)), "set by Snowflake"),
        ("phi-2", {}, EngineOptions(extra_args=("enforce-eager",)), "not a vLLM flag"),
        ("phi-2", {}, EngineOptions(extra_args=("--max-model-len=100",)), "has its own option"),
        ("phi-2", {}, EngineOptions("python", max_model_len=1024), "tune the vLLM engine"),
        ("bge-small-en-v1.5", {}, EngineOptions("vllm"), "vLLM serves chat models only"),
    ],
)
def test_bad_engine_settings_are_refused_with_a_fix(name, overrides, engine, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        resolve_model(name, engine=engine, **overrides)
    assert caught.value.fix


def test_engine_flags_are_checked_before_any_connection(monkeypatch, capsys):
    opened = []
    monkeypatch.setattr("spcs_llm.cli.services_run.session_for", lambda args: opened.append(args))
    assert main(["deploy", "phi-2", "--max-model-len", "4096"]) == 1
    assert main(["deploy", "phi-2", "--gpu-memory-utilization", "2"]) == 1
    assert main(["deploy", "phi-2", "--engine", "python", "--tensor-parallel-size", "1"]) == 1
    assert main(["deploy", "bge-small-en-v1.5", "--engine", "vllm"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") and "Fix:" in line for line in err)
    assert opened == []


def test_deploy_passes_the_engine_flags_to_the_deployer(monkeypatch):
    deployed = []

    def record(self, spec, options):
        deployed.append(spec)
        raise DeploymentError("stopped before Snowflake")

    monkeypatch.setattr("spcs_llm.cli.services_run.session_for", lambda args: None)
    monkeypatch.setattr("spcs_llm.deploy.services.deployer.Deployer.deploy", record)
    assert main(["deploy", "zephyr-7b-beta", "--max-model-len", "4096", "--gpu-memory-utilization", "0.8",
                 "--engine-arg=--enforce-eager"]) == 1
    assert deployed[0].engine == EngineOptions("vllm", 4096, 0.8, None, ("--enforce-eager",))
