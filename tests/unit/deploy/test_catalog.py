"""The model catalog: what each model needs (family, pool, memory fit, gating), and resolving any Hugging Face id
from the Hub's metadata (mocked: no Hub access in tests)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy import CATALOG, resolve_model
from spcs_llm.deploy.families import SERVING_OVERHEAD, instance_families
from spcs_llm.deploy.services.engine import EngineOptions
from spcs_llm.spcs.config import FAMILIES

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_FAMILIES = set(json.loads((ROOT / "resource" / "chat_templates" / "families.json").read_text())["families"])
ASKED_FOR = {"zephyr-7b-beta", "llama-2-7b-chat", "phi-2", "all-minilm-l6-v2"}
CURRENT_CHAT = {"llama-3.1-8b-instruct", "llama-3.2-3b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3"}
CURRENT_EMBEDDING = {"arctic-embed-m-v1.5", "bge-small-en-v1.5", "bge-base-en-v1.5", "e5-base-v2"}


def test_the_catalog_keeps_the_models_asked_for_beside_current_ones():
    assert ASKED_FOR | {"falcon-7b-instruct", "mistral-7b-instruct"} | CURRENT_CHAT | CURRENT_EMBEDDING == set(CATALOG)
    assert {CATALOG[key].kind for key in CURRENT_EMBEDDING} == {"embedding"}
    assert {CATALOG[key].kind for key in CURRENT_CHAT} == {"chat"}


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_each_entry_has_a_known_family_a_fitting_pool_and_a_size(key):
    spec = CATALOG[key]
    family = instance_families()[spec.instance_family]
    assert spec.params_billion and spec.family in FAMILIES
    assert spec.family in TEMPLATE_FAMILIES | {"auto"}
    if spec.kind == "chat":
        assert family.has_gpu and spec.gpu_count == 1 and (spec.route, spec.protocol) == ("__call__", "openai_chat")
        assert spec.weights_gb * SERVING_OVERHEAD <= family.gpu_memory_gib
    else:
        assert not family.has_gpu and not spec.uses_gpu and (spec.route, spec.protocol) == ("encode", "encode")
        assert spec.dimensions in (384, 768) and spec.max_batch_rows == 64
    assert "[inf]" not in spec.notes and "§" not in spec.notes


def test_gating_and_attached_templates_are_as_on_the_hub():
    assert {s.key for s in CATALOG.values() if s.gated} == {
        "llama-2-7b-chat", "mistral-7b-instruct", "llama-3.1-8b-instruct", "llama-3.2-3b-instruct",
        "mistral-7b-instruct-v0.3"}
    attached = {s.key for s in CATALOG.values() if s.attach_chat_template}
    assert attached == {"phi-2", "falcon-7b-instruct"}
    assert all("downloaded to the machine running the deployment" in CATALOG[key].notes for key in attached)
    assert CATALOG["qwen2.5-7b-instruct"].family == "chatml" and CATALOG["mistral-7b-instruct-v0.3"].family == "mistral"


def test_a_catalog_model_is_found_by_its_hub_id_too():
    assert resolve_model("microsoft/phi-2") == CATALOG["phi-2"]


def test_stated_facts_skip_the_hub_and_names_are_derived():
    spec = resolve_model("Qwen/Qwen2.5-1.5B-Instruct", kind="chat", gated=False, family="chatml", max_instances=2)
    assert (spec.model_name, spec.service_name) == ("QWEN2_5_1_5B_INSTRUCT", "QWEN2_5_1_5B_INSTRUCT_SVC")
    assert (spec.kind, spec.family, spec.max_instances, spec.uses_gpu) == ("chat", "chatml", 2, True)
    embedder = resolve_model("org/small-embedder", kind="embedding", gated=False)
    assert (embedder.uses_gpu, embedder.instance_family, embedder.route) == (False, "CPU_X64_S", "encode")


def _hub(monkeypatch, **metadata):
    """HfApi().model_info answering ``metadata`` (the Hub is never reached in tests)."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def model_info(self, repo_id, **kwargs):
        calls.append(repo_id)
        defaults = {"pipeline_tag": None, "library_name": None, "tags": [], "gated": False, "safetensors": None,
                    "config": {}}
        return types.SimpleNamespace(**{**defaults, **metadata})

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    return calls


def test_an_embedding_model_from_the_hub_becomes_a_cpu_embedding_service(monkeypatch):
    calls = _hub(monkeypatch, pipeline_tag="feature-extraction", library_name="sentence-transformers",
                 tags=["sentence-transformers"], safetensors=types.SimpleNamespace(total=335_000_000))
    spec = resolve_model("BAAI/bge-large-en-v1.5")
    assert calls == ["BAAI/bge-large-en-v1.5"]
    assert (spec.kind, spec.uses_gpu, spec.instance_family, spec.route, spec.gated) == (
        "embedding", False, "CPU_X64_S", "encode", False)


def test_a_gated_chat_model_from_the_hub_is_gated_and_sized_onto_a_gpu(monkeypatch):
    _hub(monkeypatch, pipeline_tag="text-generation", library_name="transformers", gated="manual",
         safetensors=types.SimpleNamespace(total=8_030_000_000),
         config={"tokenizer_config": {"chat_template": "{{ messages }}"}})
    spec = resolve_model("meta-llama/Llama-3.1-8B")
    assert (spec.kind, spec.gated, spec.instance_family, spec.gpu_count) == ("chat", True, "GPU_NV_S", 1)
    assert spec.params_billion == pytest.approx(8.03)


def test_a_user_override_wins_over_the_hub(monkeypatch):
    _hub(monkeypatch, pipeline_tag="text-generation", gated=False)
    spec = resolve_model("org/odd-model", gated=True, instance_family="gpu_gcp_nv_l4_1_24g")
    assert (spec.gated, spec.instance_family) == (True, "GPU_GCP_NV_L4_1_24G")


def test_a_chat_model_without_a_template_needs_a_family_attached(monkeypatch):
    _hub(monkeypatch, pipeline_tag="text-generation", config={"tokenizer_config": {"eos_token": "</s>"}})
    with pytest.raises(ConfigurationError, match="ships no chat template") as caught:
        resolve_model("org/base-model")
    assert "--attach-chat-template" in caught.value.fix
    assert resolve_model("org/base-model", family="chatml", attach_chat_template=True).attach_chat_template


def test_a_model_the_hub_does_not_classify_is_refused_with_the_override_flags(monkeypatch):
    _hub(monkeypatch, pipeline_tag="image-classification", library_name="timm")
    with pytest.raises(ConfigurationError, match="chat or an embedding model") as caught:
        resolve_model("org/vision-model")
    assert "--kind" in caught.value.fix


def test_offline_or_unreachable_hub_is_refused_naming_the_override_flags(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigurationError, match="HF_HUB_OFFLINE") as caught:
        resolve_model("BAAI/bge-large-en-v1.5")
    assert "--kind" in caught.value.fix and "--gated" in caught.value.fix
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")

    def unreachable(self, repo_id, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    with pytest.raises(ConfigurationError, match="could not be reached") as caught:
        resolve_model("BAAI/bge-large-en-v1.5")
    assert "--kind" in caught.value.fix


def test_an_embedding_model_never_becomes_a_chat_service_on_a_gpu(monkeypatch):
    _hub(monkeypatch, pipeline_tag="sentence-similarity", safetensors=types.SimpleNamespace(total=33_400_000))
    spec = resolve_model("BAAI/bge-small-en-v1.5-copy")
    assert (spec.kind, spec.task, spec.uses_gpu) == ("embedding", "sentence-embedding", False)


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("not a model", {}, "neither a catalog model"),
        ("org/model", {"kind": "chat", "gated": False, "family": "gpt"}, "Unknown model family"),
        ("org/model", {"kind": "chat", "gated": False, "attach_chat_template": True}, "concrete family"),
        ("phi-2", {"max_batch_rows": 8}, "at least 32"),
        ("phi-2", {"min_instances": 3, "max_instances": 2}, "max_instances"),
        ("phi-2", {"service_name": "bad-name"}, "plain Snowflake identifier"),
        ("all-minilm-l6-v2", {"engine": EngineOptions("vllm")}, "vLLM serves chat models only"),
        ("phi-2", {"instance_family": "GPU_FOO"}, "not a known SPCS instance family"),
        ("phi-2", {"instance_family": "CPU_X64_S"}, "a GPU family is needed"),
        ("llama-3.1-8b-instruct", {"instance_family": "GPU_NV_XS"}, "does not fit"),
        ("zephyr-7b-beta", {"gpu_count": 0}, "served on a GPU"),
        ("org/huge", {"kind": "chat", "gated": False, "params_billion": 70.0}, "does not fit one GPU"),
    ],
)
def test_bad_requests_are_refused_with_a_fix(name, overrides, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        resolve_model(name, **overrides)
    assert caught.value.fix


def test_an_unlisted_family_is_accepted_with_its_price():
    spec = resolve_model("phi-2", instance_family="GPU_NEW_FAMILY", credits_per_hour=0.9)
    assert (spec.instance_family, spec.credits_per_hour) == ("GPU_NEW_FAMILY", 0.9)
