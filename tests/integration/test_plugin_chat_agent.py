"""The chat component against the strict stand-in: agent conversations the Llama 2 and Mistral templates accept,
finish reasons and JSON output that tell the truth."""

from __future__ import annotations

import json
import logging

import pytest
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.errors import JsonOutputError
from spcs_standin.harness import load_component
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages

GREEDY = {"temperature": 0, "maxOutputTokens": 24}
AGENT_QUERY = {"messages": [
    {"role": "system", "content": "You are a tiny test model."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "toolCalls": [
        {"type": "function", "id": "call_1", "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'}},
    ]},
    {"role": "tool", "toolOutputs": [{"callId": "call_1", "output": "4"}]},
    {"role": "user", "content": "Name a color."},
]}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40}}, "required": ["answer"]}


@pytest.fixture()
def pat_preset(local_stack, presets) -> dict:
    return presets.pat(local_stack.issue_pat())


@pytest.mark.parametrize("service", ["chat_llama2", "chat_mistral"])
def test_an_agent_conversation_works_against_a_strict_template_service(service, dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config(service, pat_preset))
    answer = model.process(AGENT_QUERY, GREEDY, SpanBuilder("test"))
    assert isinstance(answer["text"], str) and answer["completionTokens"] > 0
    assert answer["tokenCountsAreEstimated"] is False


def test_a_template_refusal_is_retried_with_the_system_folded_when_the_family_is_unknown(
    dss_config, pat_preset, caplog
):
    model = load_component("spcs-chat", dss_config("chat_mistral", pat_preset, model_family="raw"))
    with caplog.at_level(logging.WARNING, logger="spcs_llm"):
        answer = model.process(AGENT_QUERY, GREEDY, SpanBuilder("test"))
    assert answer["completionTokens"] > 0
    assert "refused the conversation" in caplog.text and "roles must alternate" in caplog.text


def test_a_python_engine_reply_cut_at_max_tokens_reports_length(dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config("chat", pat_preset))
    query = {"messages": chat_messages(CANNED_EXCHANGES[0].question)}
    cut = model.process(query, {"temperature": 0, "maxOutputTokens": 3}, SpanBuilder("test"))
    assert cut["finishReason"] == "length" and cut["completionTokens"] == 3
    whole = model.process(query, {"temperature": 0, "maxOutputTokens": 64}, SpanBuilder("test"))
    assert whole["text"] == CANNED_EXCHANGES[0].answer and whole["finishReason"] == "stop"


def test_json_from_a_python_engine_service_fails_clearly_instead_of_returning_free_text(dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config("chat", pat_preset))
    settings = {**GREEDY, "responseFormat": {"type": "json", "schema": SCHEMA}}
    with pytest.raises(JsonOutputError, match="not JSON"):
        model.process({"messages": chat_messages(CANNED_EXCHANGES[0].question)}, settings, SpanBuilder("test"))


def test_json_from_a_vllm_engine_service_is_json_matching_the_schema(dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config("chat_vllm", pat_preset, engine="vllm"))
    settings = {"temperature": 0, "maxOutputTokens": 64, "responseFormat": {"type": "json", "schema": SCHEMA}}
    answer = model.process({"messages": chat_messages(CANNED_EXCHANGES[0].question)}, settings, SpanBuilder("test"))
    assert isinstance(json.loads(answer["text"])["answer"], str)
