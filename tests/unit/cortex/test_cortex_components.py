"""The Cortex llm.py files loaded as DSS loads them; answers read back with dataikuapi's own classes."""

import json
from pathlib import Path

import pytest
import responses
from cortex_support import ACCOUNT_URL, CHAT_URL, EMBED_URL, sse
from dataikuapi.dss.llm import DSSLLMCompletionResponse
from dataikuapi.dss.llm_tracing import SpanBuilder
from dataikuapi.dss.llm_utils import _ChunkAggregator

from spcs_llm.core.errors import RequestRejectedError
from spcs_standin.harness import load_component

ROOT = Path(__file__).resolve().parents[3]
COMPONENTS = ["cortex-chat", "cortex-embedding"]
TOKEN = "oauth-access-token-of-bob-0123456789"
INTERNAL_REFERENCES = ("spcs-protocol", "design.md", "dataiku-llm-plugin-contract", "cortex-rest.md", "§", "[inf]")
READ_BY_PARSER = {"auth_type", "oauth_preset", "service_preset", "account_url", "model", "max_parallelism",
                  "connect_timeout", "read_timeout", "max_attempts", "max_retry_seconds", "input_credits_per_million",
                  "dollars_per_credit", "tokenizer"}


def config(**overrides):
    return {"auth_type": "oauth", "oauth_preset": {"snowflake_oauth": TOKEN}, "account_url": ACCOUNT_URL,
            "model": "claude-3-5-sonnet", **overrides}


def descriptor(component):
    return json.loads((ROOT / "python-llms" / component / "llm.json").read_text())


@pytest.mark.parametrize("component", COMPONENTS)
def test_descriptor_settings_are_the_ones_the_parser_reads_and_are_explained(component):
    params = descriptor(component)["params"]
    names = {p["name"] for p in params if p["type"] != "SEPARATOR"}
    assert READ_BY_PARSER <= names
    extra = {"cortex-chat": {"tool_calling", "default_max_tokens", "output_credits_per_million", "accepts_images",
                             "thinking_budget_tokens", "reasoning_effort"},
             "cortex-embedding": {"rows_per_request"}}[component]
    assert names == READ_BY_PARSER | extra
    undocumented = [p["name"] for p in params if p["type"] not in {"SEPARATOR", "PRESET", "SELECT"}
                    and not p.get("description")]
    assert undocumented == []
    text = json.dumps(descriptor(component), ensure_ascii=False)
    assert [ref for ref in INTERNAL_REFERENCES if ref in text] == []


@pytest.mark.parametrize("component", COMPONENTS)
def test_llm_py_stays_thin(component):
    assert len((ROOT / "python-llms" / component / "llm.py").read_text().splitlines()) <= 60


def test_chat_component_answers_with_usage_cost_and_a_trace_without_the_token(http):
    http.add(responses.POST, CHAT_URL, json={
        "choices": [{"message": {"content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
    model = load_component("cortex-chat", config())
    trace = SpanBuilder("root")
    raw = model.process({"messages": [{"role": "user", "content": "ping"}]}, {"temperature": 0}, trace)
    response = DSSLLMCompletionResponse(raw_resp={**raw, "ok": True})
    assert response.success and response.text == "pong" and raw["estimatedCost"] > 0
    span = trace.to_dict()["children"][0]
    assert span["attributes"]["cortex.model"] == "claude-3-5-sonnet" and span["attributes"]["promptTokens"] == 9
    assert TOKEN not in json.dumps(trace.to_dict())
    assert http.calls[0].request.headers["X-Snowflake-Authorization-Token-Type"] == "OAUTH"


def test_chat_component_stream_with_tool_calls_aggregates_like_dss(http):
    body = sse(
        json.dumps({"choices": [{"index": 0, "delta": {"content": "Let me look."}}]}),
        json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_9", "type": "function",
             "function": {"name": "lookup", "arguments": '{"q":'}}]}}]}),
        json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": ' "snow"}'}}]}, "finish_reason": "tool_calls"}]}),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 8}}),
    )
    http.add(responses.POST, CHAT_URL, body=body, content_type="text/event-stream")
    model = load_component("cortex-chat", config())
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    aggregator = _ChunkAggregator(model.process_stream({"messages": [{"role": "user", "content": "find snow"}]},
                                                       {"tools": tools, "toolChoice": {"type": "required"}}, None))
    produced = list(aggregator)
    assert "footer" in produced[-1] and all("chunk" in c for c in produced[:-1])
    assert aggregator.response["text"] == "Let me look." and aggregator.response["totalTokens"] == 28
    assert aggregator.response["toolCalls"][0]["function"] == {"name": "lookup", "arguments": '{"q": "snow"}'}
    assert json.loads(http.calls[0].request.body)["tool_choice"] == "required"


def test_embedding_component_embeds_a_batch(http):
    http.add(responses.POST, EMBED_URL, json={"object": "list", "model": "e5-base-v2", "usage": {"total_tokens": 3},
                                              "data": [{"object": "embedding", "index": 0, "embedding": [[0.25, 0.75]]},
                                                       {"object": "embedding", "index": 1, "embedding": [[1.0, 0.0]]}]})
    model = load_component("cortex-embedding", config(model="e5-base-v2"))
    raw = model.process({"queries": [{"text": "a"}, {"text": "b"}]}, {}, None)
    assert [r["embedding"] for r in raw["responses"]] == [[0.25, 0.75], [1.0, 0.0]] and raw["promptTokens"] == 3


BAD_SETTINGS = [
    ({"temperature": "hot"}, "temperature", "a number from 0 to 2"),
    ({"temperature": -0.1}, "temperature", "a number from 0 to 2"),
    ({"maxOutputTokens": -1}, "maxOutputTokens", "a whole number of at least 1"),
    ({"maxOutputTokens": "many"}, "maxOutputTokens", "a whole number of at least 1"),
    ({"topP": 1.01}, "topP", "greater than 0 and at most 1"),
    ({"topK": 2.5}, "topK", "-1 or 0 for no limit, or at least 1"),
    ({"frequencyPenalty": 3}, "frequencyPenalty", "a number from -2 to 2"),
    ({"presencePenalty": [1]}, "presencePenalty", "a number from -2 to 2"),
    ({"stopSequences": "END"}, "stopSequences", "a list of strings"),
    ({"logProbs": "yes"}, "logProbs", "true or false"),
    ({"topLogProbs": 21}, "topLogProbs", "a whole number from 0 to 20"),
]


@pytest.mark.parametrize("settings,name,valid", BAD_SETTINGS)
def test_chat_component_refuses_a_bad_generation_setting_before_any_request(http, settings, name, valid):
    model = load_component("cortex-chat", config())
    query = {"messages": [{"role": "user", "content": "ping"}]}
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with pytest.raises(RequestRejectedError) as refused:
        model.process(query, {**settings, "tools": tools}, None)
    assert f"'{name}'" in refused.value.message and valid in refused.value.message
    assert f"Set '{name}' to" in refused.value.fix
    with pytest.raises(RequestRejectedError, match=f"'{name}'"):
        list(model.process_stream(query, settings, None))
    assert len(http.calls) == 0  # no URL is registered, and nothing was even tried


def test_chat_component_sends_checked_settings_as_numbers(http):
    http.add(responses.POST, CHAT_URL, json={"choices": [{"message": {"content": "pong"}, "finish_reason": "stop"}],
                                             "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    model = load_component("cortex-chat", config())
    settings = {"temperature": "0.25", "maxOutputTokens": 100.0, "topP": "0.9", "frequencyPenalty": 2, "topK": 40}
    assert model.process({"messages": [{"role": "user", "content": "ping"}]}, settings, None)["text"] == "pong"
    body = json.loads(http.calls[0].request.body)
    assert (body["temperature"], body["max_completion_tokens"], body["top_p"]) == (0.25, 100, 0.9)
    assert body["frequency_penalty"] == 2.0 and "top_k" not in body
