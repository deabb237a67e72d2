"""Reasoning settings on the wire; the model's reasoning kept out of the answer and put in the trace."""

import json

import pytest
import responses
from cortex_support import CHAT_URL, chat_client, sse
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.errors import ConfigurationError, RequestRejectedError
from spcs_llm.cortex.dss_adapter import CortexChatAdapter

HELLO = {"messages": [{"role": "user", "content": "Is 97 prime?"}]}
THOUGHT = "97 is not divisible by 2, 3, 5 or 7."


def adapter(model, **extra):
    return CortexChatAdapter(chat_client(model=model, **extra))


def test_a_claude_thinking_budget_is_sent_and_the_thinking_goes_to_the_trace_only(http):
    http.add(responses.POST, CHAT_URL, json={
        "choices": [{"message": {"content": "Yes.", "reasoning_content": THOUGHT}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 30}})
    trace = SpanBuilder("root")
    answer = adapter("claude-3-7-sonnet", thinking_budget_tokens=2048, default_max_tokens=4096).process(
        HELLO, {}, trace)
    body = json.loads(http.calls[0].request.body)
    assert body["reasoning"] == {"max_tokens": 2048} and "reasoning_effort" not in body
    assert answer["text"] == "Yes." and THOUGHT not in json.dumps(answer)
    span = trace.to_dict()["children"][0]
    assert span["outputs"]["reasoning"] == THOUGHT and span["attributes"]["cortex.reasoningChars"] == len(THOUGHT)


def test_an_openai_reasoning_effort_is_sent_and_streamed_reasoning_stays_out_of_the_chunks(http):
    body = sse(
        json.dumps({"choices": [{"index": 0, "delta": {"reasoning": {"summary": "Check small primes. "}}}]}),
        json.dumps({"choices": [{"index": 0, "delta": {"reasoning_content": "None divide it."}}]}),
        json.dumps({"choices": [{"index": 0, "delta": {"content": "Yes"}, "finish_reason": "stop"}]}),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 12}}),
    )
    http.add(responses.POST, CHAT_URL, body=body, content_type="text/event-stream")
    trace = SpanBuilder("root")
    events = list(adapter("openai-o4-mini", reasoning_effort="high").process_stream(HELLO, {}, trace))
    sent = json.loads(http.calls[0].request.body)
    assert sent["reasoning_effort"] == "high" and "reasoning" not in sent
    chunks = [e["chunk"]["text"] for e in events if "chunk" in e]
    assert chunks == ["Yes"]
    span = trace.to_dict()["children"][0]
    assert span["outputs"]["reasoning"] == "Check small primes. None divide it."
    assert span["outputs"]["text"] == "Yes"


def test_no_reasoning_fields_without_the_settings(http):
    http.add(responses.POST, CHAT_URL, json={"choices": [{"message": {"content": "Yes."}, "finish_reason": "stop"}]})
    adapter("claude-3-7-sonnet", reasoning_effort="off", thinking_budget_tokens=0).process(HELLO, {}, None)
    body = json.loads(http.calls[0].request.body)
    assert "reasoning" not in body and "reasoning_effort" not in body


@pytest.mark.parametrize(("model", "settings", "says"), [
    ("openai-gpt-4.1", {"thinking_budget_tokens": 2048}, "not a Claude model"),
    ("claude-4-sonnet", {"thinking_budget_tokens": 500}, "at least 1,024"),
    ("claude-4-sonnet", {"reasoning_effort": "low"}, "not an OpenAI model"),
    ("openai-o4-mini", {"reasoning_effort": "extreme"}, "reasoning_effort"),
    ("claude-4-sonnet", {"thinking_budget_tokens": 2048, "default_max_tokens": 2048}, "below 'Default max"),
])
def test_a_setting_for_the_wrong_family_or_out_of_range_is_a_configuration_error(model, settings, says):
    with pytest.raises(ConfigurationError) as refused:
        adapter(model, **settings)
    assert says in str(refused.value)


def test_a_thinking_budget_not_below_the_max_tokens_is_refused_before_sending(http):
    model = adapter("claude-4-sonnet", thinking_budget_tokens=2048, default_max_tokens=4096)
    with pytest.raises(RequestRejectedError) as refused:
        model.process(HELLO, {"maxOutputTokens": 1024}, None)
    assert "below the max output tokens" in str(refused.value) and "Raise" in refused.value.fix
    assert len(http.calls) == 0
