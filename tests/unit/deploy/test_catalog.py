"""The model catalog: what each model needs, and resolving any Hugging Face id."""

from __future__ import annotations

import pytest

from spcs_llm.config import FAMILIES
from spcs_llm.deploy import CATALOG, resolve_model
from spcs_llm.errors import ConfigurationError


def test_the_catalog_holds_the_five_chat_models_and_the_embedding_model():
    assert set(CATALOG) == {"zephyr-7b-beta", "llama-2-7b-chat", "phi-2", "falcon-7b-instruct",
                            "mistral-7b-instruct", "all-minilm-l6-v2"}
    chat = [s for s in CATALOG.values() if s.kind == "chat"]
    assert all(s.uses_gpu and s.instance_family == "GPU_NV_S" and s.family in FAMILIES for s in chat)
    assert {s.key for s in chat if s.attach_chat_template} == {"phi-2", "falcon-7b-instruct"}
    assert {s.key for s in CATALOG.values() if s.gated} == {"llama-2-7b-chat", "mistral-7b-instruct"}
    embedding = CATALOG["all-minilm-l6-v2"]
    assert (embedding.uses_gpu, embedding.instance_family, embedding.route, embedding.protocol) == (
        False, "CPU_X64_S", "encode", "encode")
    assert all((s.route, s.protocol) == ("__call__", "openai_chat") for s in chat)


def test_a_catalog_model_is_found_by_its_hub_id_too():
    assert resolve_model("microsoft/phi-2") == CATALOG["phi-2"]


def test_any_hub_id_becomes_a_spec_with_derived_names_and_overrides():
    spec = resolve_model("Qwen/Qwen2.5-1.5B-Instruct", family="chatml", gpu_count=1, max_instances=2)
    assert (spec.model_name, spec.service_name) == ("QWEN2_5_1_5B_INSTRUCT", "QWEN2_5_1_5B_INSTRUCT_SVC")
    assert (spec.kind, spec.family, spec.max_instances, spec.attach_chat_template) == ("chat", "chatml", 2, False)
    embedder = resolve_model("BAAI/bge-small-en-v1.5", kind="embedding")
    assert (embedder.uses_gpu, embedder.route) == (False, "encode")


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("not a model", {}, "neither a catalog model"),
        ("org/model", {"family": "gpt"}, "Unknown model family"),
        ("org/model", {"attach_chat_template": True}, "concrete family"),
        ("phi-2", {"max_batch_rows": 8}, "at least 32"),
        ("phi-2", {"min_instances": 3, "max_instances": 2}, "max_instances"),
        ("phi-2", {"service_name": "bad-name"}, "plain Snowflake identifier"),
        ("all-minilm-l6-v2", {"vllm_args": ()}, "vLLM serves chat models only"),
    ],
)
def test_bad_requests_are_refused_with_a_fix(name, overrides, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        resolve_model(name, **overrides)
    assert caught.value.fix
