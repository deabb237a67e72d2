"""Tool calls: DSS tools/toolChoice → the API, replies → DSS toolCalls, streamed fragments assembled, refusals."""

import json

import pytest
import responses
from cortex_support import CHAT_URL, chat_client, sse

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.cortex.dss_adapter import CortexChatAdapter
from spcs_llm.cortex.messages import chat_messages
from spcs_llm.cortex.tool_calls import ToolCallAssembler, model_can_call_tools, tool_request

CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": CITY_SCHEMA, "compatible": True}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
QUERY = {"messages": [{"role": "user", "content": "Weather and time in Paris?"}]}


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"),
    ({"type": "none"}, "none"),
    ({"type": "required"}, "required"),
    ({"type": "tool_name", "name": "get_time"}, {"type": "function", "function": {"name": "get_time"}}),
    (None, "auto"),
])
def test_tool_choice_maps_to_the_openai_form(choice, expected):
    request = tool_request({"tools": [WEATHER, CLOCK], "toolChoice": choice}, "claude-3-5-sonnet")
    assert request.tool_choice == expected
    assert [t["function"]["name"] for t in request.tools] == ["get_weather", "get_time"]
    assert "compatible" not in request.tools[0]["function"]  # a DSS-only key is not sent


def test_a_named_tool_that_is_not_among_the_tools_is_refused():
    with pytest.raises(RequestRejectedError, match="get_stock"):
        tool_request({"tools": [WEATHER], "toolChoice": {"type": "tool_name", "name": "get_stock"}}, "claude-4-sonnet")


@pytest.mark.parametrize("choice", [{"type": "required"}, {"type": "tool_name", "name": "get_weather"}])
def test_a_required_tool_on_a_model_that_cannot_call_tools_is_refused_before_any_request(http, choice):
    adapter = CortexChatAdapter(chat_client(model="llama3.1-70b"))
    with pytest.raises(RequestRejectedError, match="cannot call tools") as refused:
        adapter.process(QUERY, {"tools": [WEATHER], "toolChoice": choice}, None)
    assert "Claude or OpenAI" in refused.value.fix
    assert len(http.calls) == 0


def test_optional_tools_are_left_out_for_a_model_that_cannot_call_tools(http):
    http.add(responses.POST, CHAT_URL, json={"choices": [{"message": {"content": "Sunny"}, "finish_reason": "stop"}]})
    CortexChatAdapter(chat_client(model="mistral-large2")).process(QUERY, {"tools": [WEATHER]}, None)
    body = json.loads(http.calls[0].request.body)
    assert "tools" not in body and "tool_choice" not in body


def test_the_tool_calling_setting_overrides_the_capability_list():
    assert model_can_call_tools("claude-3-5-sonnet") and model_can_call_tools("openai-gpt-4.1")
    assert not model_can_call_tools("llama3.1-70b") and not model_can_call_tools("MYDB.PUBLIC.MY_TUNED_LLAMA")
    assert model_can_call_tools("llama4-maverick", "supported")
    assert not model_can_call_tools("claude-3-5-sonnet", "unsupported")


def test_a_reply_with_tool_calls_is_returned_in_the_dss_shape(http):
    http.add(responses.POST, CHAT_URL, json={"choices": [{"finish_reason": "tool_calls", "message": {
        "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": {}}},
        ]}}], "usage": {"prompt_tokens": 30, "completion_tokens": 9}})
    response = CortexChatAdapter(chat_client()).process(QUERY, {"tools": [WEATHER, CLOCK]}, None)
    assert response["toolCalls"] == [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"type": "function", "id": "call_2", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    assert response["text"] == "" and response["finishReason"] == "tool_calls"
    body = json.loads(http.calls[0].request.body)
    assert body["tool_choice"] == "auto" and body["tools"][0]["function"]["name"] == "get_weather"


def test_fragments_assemble_split_names_and_arguments_of_parallel_calls():
    assembler = ToolCallAssembler()
    assembler.add([{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_wea", "arguments": ""}}])
    assembler.add([{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time"}}])
    assembler.add([{"index": 0, "function": {"name": "ther", "arguments": '{"ci'}}])
    assembler.add([{"index": 1, "function": {"arguments": '{"tz": "CET"}'}},
                   {"index": 0, "function": {"arguments": 'ty": "Par'}}])
    assembler.add([{"index": 0, "function": {"arguments": 'is"}'}}])
    assert assembler.calls() == [
        {"type": "function", "id": "call_a", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"type": "function", "id": "call_b", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
    ]


def test_fragments_without_an_index_follow_their_id_or_the_latest_call():
    assembler = ToolCallAssembler()
    assembler.add([{"id": "x1", "function": {"name": "get_weather", "arguments": '{"city"'}}])
    assembler.add([{"function": {"arguments": ': "Oslo"}'}}])
    assembler.add([{"id": "x2", "function": {"name": "get_time", "arguments": "{}"}}])
    calls = assembler.calls()
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [("x1", '{"city": "Oslo"}'), ("x2", "{}")]


def test_a_streamed_tool_call_reaches_dss_as_one_chunk_of_whole_calls_before_the_footer(http):
    def delta(tool_calls=None, content=None, finish=None):
        d = {**({"tool_calls": tool_calls} if tool_calls else {}), **({"content": content} if content else {})}
        return json.dumps({"choices": [{"index": 0, "delta": d, "finish_reason": finish}]})

    body = sse(
        delta(content="Checking."),
        delta([{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_", "arguments": ""}}]),
        delta([{"index": 1, "id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]),
        delta([{"index": 0, "function": {"name": "weather", "arguments": '{"city":'}}]),
        delta([{"index": 0, "function": {"arguments": ' "Paris"}'}}], finish="tool_calls"),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 20}}),
    )
    http.add(responses.POST, CHAT_URL, body=body, content_type="text/event-stream")
    out = list(CortexChatAdapter(chat_client()).process_stream(QUERY, {"tools": [WEATHER, CLOCK]}, None))
    assert out[0] == {"chunk": {"text": "Checking."}}
    assert out[1] == {"chunk": {"toolCalls": [
        {"type": "function", "id": "toolu_1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"type": "function", "id": "toolu_2", "function": {"name": "get_time", "arguments": "{}"}},
    ]}}
    assert out[2]["footer"]["finishReason"] == "tool_calls" and len(out) == 3


def test_tool_history_is_sent_structured_to_a_tool_model_and_as_text_otherwise():
    query = {"messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me check."},
        {"role": "assistant", "toolCalls": [{"type": "function", "id": "c1",
                                             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "toolOutputs": [{"callId": "c1", "output": "18°C, sunny"}]},
    ]}
    structured = chat_messages(query, structured_tools=True)
    assert structured[1] == {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"type": "function", "id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert structured[2] == {"role": "tool", "tool_call_id": "c1", "content": "18°C, sunny"}
    as_text = chat_messages(query, structured_tools=False)
    assert [m["role"] for m in as_text] == ["user", "assistant", "user"]
    assert "get_weather" in as_text[1]["content"] and "18°C, sunny" in as_text[2]["content"]


def test_a_server_repeating_the_whole_name_in_each_fragment_does_not_double_it():
    assembler = ToolCallAssembler()
    assembler.add([{"index": 0, "id": "c", "function": {"name": "get_time", "arguments": "{"}}])
    assembler.add([{"index": 0, "function": {"name": "get_time", "arguments": "}"}}])
    assert assembler.calls()[0]["function"] == {"name": "get_time", "arguments": "{}"}
