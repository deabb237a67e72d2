"""True streaming: deltas in order as events are read, one footer last with exact usage, a clean close on cancel."""

import io
import json

import pytest
import responses
from cortex_support import CHAT_URL, chat_client, sse

from http_fakes import RecordingRaw
from spcs_llm.core.endpoint_state import endpoint_state
from spcs_llm.core.errors import BadResponseError
from spcs_llm.cortex.client import CortexChatRequest, CortexChatResult
from spcs_llm.cortex.dss_adapter import CortexChatAdapter
from spcs_llm.cortex.streaming import StreamedText, StreamEnd, read_chat_stream
from spcs_llm.dss.generation import GenerationParams


def chunk(content=None, finish=None, usage=None):
    delta = {} if content is None else {"content": content}
    event = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        event["usage"] = usage
    return json.dumps(event)


STREAM = sse(
    chunk("Hel"), chunk("lo"), chunk(", world"), chunk(finish="stop"),
    json.dumps({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}),
)
QUERY = {"messages": [{"role": "user", "content": "hi"}]}


def test_stream_yields_deltas_in_order_then_one_footer_last_with_exact_usage(http):
    http.add(responses.POST, CHAT_URL, body=STREAM, content_type="text/event-stream")
    adapter = CortexChatAdapter(chat_client())
    out = list(adapter.process_stream(QUERY, {}, None))
    assert out[:3] == [{"chunk": {"text": "Hel"}}, {"chunk": {"text": "lo"}}, {"chunk": {"text": ", world"}}]
    assert len(out) == 4 and "footer" in out[-1]
    footer = out[-1]["footer"]
    assert footer["promptTokens"] == 12 and footer["completionTokens"] == 3 and footer["totalTokens"] == 15
    assert footer["tokenCountsAreEstimated"] is False and footer["finishReason"] == "stop"
    body = json.loads(http.calls[0].request.body)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "text/event-stream" in http.calls[0].request.headers["Accept"]


class CountingEvents:
    """An event source that counts how many events were pulled; read_chat_stream must not read ahead."""

    def __init__(self, events):
        self._events = iter(events)
        self.pulled = 0
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        event = next(self._events)
        self.pulled += 1
        return event

    def close(self):
        self.closed = True


def test_each_delta_is_handed_over_before_the_next_event_is_read():
    events = CountingEvents([json.loads(chunk("a")), json.loads(chunk("b")), json.loads(chunk(finish="stop"))])
    parts = read_chat_stream(events)
    assert next(parts) == StreamedText("a") and events.pulled == 1
    assert next(parts) == StreamedText("b") and events.pulled == 2
    end = list(parts)[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop" and events.closed


def test_closing_the_stream_early_closes_the_response_and_frees_the_limiter_slot(http):
    raw = RecordingRaw(STREAM.encode())
    http.add(responses.POST, CHAT_URL, body=io.BufferedReader(raw), content_type="text/event-stream")
    client = chat_client()
    stream = client.stream(CortexChatRequest(messages=[{"role": "user", "content": "hi"}], params=GenerationParams()))
    assert next(stream) == "Hel"
    state = endpoint_state(client.config.endpoint.base_url)
    assert state.limiter.in_use == 1  # the open stream holds its slot
    stream.close()  # what DSS does when the user cancels
    assert raw.was_closed
    assert state.limiter.in_use == 0


def test_dss_generator_close_propagates_to_the_http_stream(http):
    raw = RecordingRaw(STREAM.encode())
    http.add(responses.POST, CHAT_URL, body=io.BufferedReader(raw), content_type="text/event-stream")
    adapter = CortexChatAdapter(chat_client())
    events = adapter.process_stream(QUERY, {}, None)
    assert next(events) == {"chunk": {"text": "Hel"}}
    events.close()
    assert raw.was_closed
    assert endpoint_state(adapter.client.config.endpoint.base_url).limiter.in_use == 0


def test_an_error_event_mid_stream_is_a_typed_error_after_the_text_so_far(http):
    body = sse(chunk("partial"), json.dumps({"error": {"message": "schema violation"}}))
    http.add(responses.POST, CHAT_URL, body=body, content_type="text/event-stream")
    stream = chat_client().stream(CortexChatRequest(messages=[{"role": "user", "content": "hi"}],
                                                    params=GenerationParams()))
    assert next(stream) == "partial"
    with pytest.raises(BadResponseError, match="schema violation") as failed:
        next(stream)
    assert "JSON schema" in failed.value.fix  # the stream's own advice, not the generic bad-answer one


def test_a_stream_without_usage_reports_estimated_counts(http):
    http.add(responses.POST, CHAT_URL, body=sse(chunk("two words"), chunk(finish="length")),
             content_type="text/event-stream")
    *_, result = chat_client().stream(CortexChatRequest(messages=[{"role": "user", "content": "hi"}],
                                                        params=GenerationParams()))
    assert isinstance(result, CortexChatResult)
    assert result.tokens_estimated is True and result.completion_tokens > 0 and result.finish_reason == "length"


def test_non_streamed_completion_reads_text_usage_and_finish_reason(http):
    http.add(responses.POST, CHAT_URL, json={
        "choices": [{"message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    response = CortexChatAdapter(chat_client()).process(QUERY, {"maxOutputTokens": 50, "temperature": 0}, None)
    assert response["text"] == "Hi there" and response["promptTokens"] == 5 and response["finishReason"] == "stop"
    body = json.loads(http.calls[0].request.body)
    assert body["stream"] is False and body["max_completion_tokens"] == 50 and body["temperature"] == 0
    assert body["model"] == "claude-3-5-sonnet" and body["messages"] == [{"role": "user", "content": "hi"}]


def test_json_output_with_a_schema_is_passed_through_as_a_json_schema(http):
    http.add(responses.POST, CHAT_URL,
             json={"choices": [{"message": {"content": '{"a": 1}'}, "finish_reason": "stop"}]})
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    CortexChatAdapter(chat_client()).process(QUERY, {"responseFormat": {"type": "json", "schema": schema,
                                                                        "strict": True}}, None)
    sent = json.loads(http.calls[0].request.body)["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": True}}



def test_a_stream_request_answered_with_one_json_document_becomes_one_delta_and_the_footer(http):
    http.add(responses.POST, CHAT_URL, json={"choices": [{"message": {"content": "whole"}, "finish_reason": "stop"}],
                                             "usage": {"prompt_tokens": 4, "completion_tokens": 1}})
    out = list(CortexChatAdapter(chat_client()).process_stream(QUERY, {}, None))
    assert out == [{"chunk": {"text": "whole"}}, {"footer": {
        "promptTokens": 4, "completionTokens": 1, "totalTokens": 5, "tokenCountsAreEstimated": False,
        "estimatedCost": out[1]["footer"]["estimatedCost"], "finishReason": "stop"}}]


def test_an_early_close_frees_the_slot_without_garbage_collection(http, monkeypatch):
    """Explicit closing, not ``EventStream.__del__``, frees the socket and the slot (issue 19, P2)."""
    from spcs_llm.core.sse import EventStream

    monkeypatch.setattr(EventStream, "__del__", lambda self: None)
    raw = RecordingRaw(STREAM.encode())
    http.add(responses.POST, CHAT_URL, body=io.BufferedReader(raw), content_type="text/event-stream")
    adapter = CortexChatAdapter(chat_client())
    events = adapter.process_stream(QUERY, {}, None)
    assert next(events) == {"chunk": {"text": "Hel"}}
    assert endpoint_state(adapter.client.config.endpoint.base_url).limiter.in_use == 1
    events.close()
    assert raw.was_closed
    assert endpoint_state(adapter.client.config.endpoint.base_url).limiter.in_use == 0
