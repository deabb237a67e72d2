"""Conversation normalisation and DSS tool traffic: what strict chat templates are given."""

import pytest

from spcs_llm.dss.conversation import normalise, tool_call_text, tool_result_text
from spcs_llm.spcs.dss_adapter import messages_from_query

AGENT_QUERY = {
    "messages": [
        {"role": "system", "content": "You answer weather questions."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "toolCalls": [
            {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ]},
        {"role": "tool", "toolOutputs": [{"callId": "call_1", "output": "18 C, sunny"}]},
        {"role": "user", "content": "Do I need an umbrella?"},
    ]
}


def test_dss_tool_calls_and_results_become_labelled_text_instead_of_being_dropped():
    messages = messages_from_query(AGENT_QUERY)
    assert messages == [
        {"role": "system", "content": "You answer weather questions."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '[Tool call] get_weather({"city": "Paris"})'},
        {"role": "user", "content": "[Output of tool get_weather]\n18 C, sunny"},
        {"role": "user", "content": "Do I need an umbrella?"},
    ]


def test_assistant_text_beside_tool_calls_is_kept_and_multipart_tool_outputs_are_read():
    query = {"messages": [
        {"role": "user", "content": "Both cities?"},
        {"role": "assistant", "content": "Checking.", "toolCalls": [
            {"id": "a", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"id": "b", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ]},
        {"role": "tool", "toolOutputs": [{"callId": "a", "parts": [{"type": "TEXT", "text": "-2 C"}]},
                                         {"callId": "b", "output": "21 C"}]},
    ]}
    messages = messages_from_query(query)
    assert messages[1]["content"] == ('Checking.\n[Tool call] get_weather({"city": "Oslo"})\n'
                                      '[Tool call] get_weather({"city": "Rome"})')
    assert messages[2] == {"role": "user",
                           "content": "[Output of tool get_weather]\n-2 C\n[Output of tool get_weather]\n21 C"}


def test_a_result_whose_call_is_unknown_is_labelled_with_its_call_id():
    assert tool_result_text([("call_9", "x")]) == "[Output of tool call_9]\nx"
    assert tool_call_text([{"function": {"name": "f"}}]) == "[Tool call] f({})"


def test_normalise_merges_same_role_turns_and_moves_system_text_to_the_front():
    messages = [
        {"role": "system", "content": "A"},
        {"role": "user", "content": "u1"},
        {"role": "user", "content": "u2"},
        {"role": "system", "content": "B"},
        {"role": "assistant", "content": "a1"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "u3"},
    ]
    assert normalise(messages) == [
        {"role": "system", "content": "A\n\nB"},
        {"role": "user", "content": "u1\n\nu2"},
        {"role": "assistant", "content": "a1\n\na2"},
        {"role": "user", "content": "u3"},
    ]


@pytest.mark.parametrize("first, expected", [
    ({"role": "user", "content": "Hi"}, [{"role": "user", "content": "Be brief.\n\nHi"}]),
    ({"role": "assistant", "content": "Hello"},
     [{"role": "user", "content": "Be brief."}, {"role": "assistant", "content": "Hello"}]),
])
def test_fold_system_puts_it_in_the_first_user_turn(first, expected):
    assert normalise([{"role": "system", "content": "Be brief."}, first], fold_system=True) == expected


def test_blank_system_messages_are_dropped():
    assert normalise([{"role": "system", "content": "  "}, {"role": "user", "content": "Hi"}]) == [
        {"role": "user", "content": "Hi"}]
