"""Through the real chat component: one service, its base model and its LoRA adapter as two LLM Mesh models."""

from __future__ import annotations

import pytest
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.errors import RequestRejectedError
from spcs_standin.harness import load_component
from spcs_standin.lora_engine import ADAPTER_ALIAS, FINETUNE_EXAMPLE
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages

GREEDY = {"temperature": 0, "maxOutputTokens": 32}
QUESTION = {"messages": chat_messages(FINETUNE_EXAMPLE.instruction)}


@pytest.fixture()
def pat_preset(local_stack, presets) -> dict:
    return presets.pat(local_stack.issue_pat())


def test_the_fine_tuned_model_answers_with_the_trained_reply_and_the_base_model_does_not(dss_config, pat_preset):
    base = load_component("spcs-chat", dss_config("chat_lora", pat_preset, engine="vllm"))
    tuned = load_component("spcs-chat", dss_config("chat_lora", pat_preset, engine="vllm", adapter=ADAPTER_ALIAS))
    base_answer = base.process(QUESTION, GREEDY, SpanBuilder("test"))
    tuned_answer = tuned.process(QUESTION, GREEDY, SpanBuilder("test"))
    canned = next(e.answer for e in CANNED_EXCHANGES if e.question == FINETUNE_EXAMPLE.instruction)
    assert base_answer["text"] == canned
    assert tuned_answer["text"] == FINETUNE_EXAMPLE.output != base_answer["text"]
    assert tuned_answer["finishReason"] == "stop" and tuned_answer["tokenCountsAreEstimated"] is False


def test_an_adapter_the_service_does_not_have_is_a_clear_error(dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config("chat_lora", pat_preset, engine="vllm", adapter="not_attached"))
    with pytest.raises(RequestRejectedError, match="`not_attached` does not exist"):
        model.process(QUESTION, GREEDY, SpanBuilder("test"))
