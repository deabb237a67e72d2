"""An SPCS chat stream is closed explicitly, never left to garbage collection (issue 19, P2).

Closing early (DSS cancelling), reaching the end and failing mid-stream each close the HTTP response and free the
endpoint's limiter slot at once. ``EventStream.__del__`` is switched off here, so only an explicit close can pass.
"""

import io
import json

import pytest
import responses
from test_chat_client import ENDPOINT, MESSAGES, make_client

from http_fakes import RecordingRaw
from spcs_llm.core.endpoint_state import endpoint_state
from spcs_llm.core.errors import BadResponseError
from spcs_llm.core.sse import EventStream
from spcs_llm.dss.generation import GenerationParams
from spcs_llm.spcs.chat import ChatResult
from spcs_llm.spcs.dss_adapter import ChatAdapter

CHUNKS = [
    {"choices": [{"delta": {"content": "Hel"}}]},
    {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
]
BODY = "".join(f"data: {json.dumps(c)}\n\n" for c in CHUNKS) + "data: [DONE]\n\n"
QUERY = {"messages": [{"role": "user", "content": "hi"}]}



@pytest.fixture(autouse=True)
def no_close_by_garbage_collection(monkeypatch):
    monkeypatch.setattr(EventStream, "__del__", lambda self: None)


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def streamed_body(http, text: str = BODY) -> RecordingRaw:
    raw = RecordingRaw(text.encode())
    http.add(responses.POST, f"{ENDPOINT}/__call__", body=io.BufferedReader(raw), content_type="text/event-stream")
    return raw


def in_flight(client) -> int:
    return endpoint_state(client.config.endpoint.base_url).limiter.in_use


def test_closing_the_client_stream_early_closes_the_response_and_frees_the_slot(http):
    raw = streamed_body(http)
    client = make_client()
    stream = client.stream(MESSAGES, GenerationParams())
    assert next(stream) == "Hel"
    assert in_flight(client) == 1  # the open stream holds its slot
    stream.close()
    assert raw.was_closed
    assert in_flight(client) == 0


def test_closing_the_dss_stream_early_closes_the_http_stream(http):
    raw = streamed_body(http)
    adapter = ChatAdapter(make_client())
    events = adapter.process_stream(QUERY, {}, None)
    assert next(events) == {"chunk": {"text": "Hel"}}
    events.close()  # what DSS does when the user cancels
    assert raw.was_closed
    assert in_flight(adapter.client) == 0


def test_a_stream_read_to_the_end_is_closed_before_the_result(http):
    raw = streamed_body(http)
    client = make_client()
    events = list(client.stream(MESSAGES, GenerationParams()))
    assert isinstance(events[-1], ChatResult) and events[-1].text == "Hello"
    assert raw.was_closed and in_flight(client) == 0
    assert events[-1].busy_seconds > 0  # the slot's busy time was charged when the stream closed


def test_a_stream_that_breaks_mid_way_is_closed_too(http):
    raw = streamed_body(http, f"data: {json.dumps(CHUNKS[0])}\n\ndata: not json\n\n")
    client = make_client()
    stream = client.stream(MESSAGES, GenerationParams())
    assert next(stream) == "Hel"
    with pytest.raises(BadResponseError, match="not JSON"):
        next(stream)
    assert raw.was_closed and in_flight(client) == 0
