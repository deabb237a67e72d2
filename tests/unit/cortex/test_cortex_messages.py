"""Cortex chat messages: a conversation no model can read or answer is refused before any request, with the
same error as the SPCS chat component."""

import pytest
from cortex_support import chat_client

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.cortex.dss_adapter import CortexChatAdapter
from spcs_llm.cortex.messages import chat_messages


def user(text):
    return {"messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize("structured_tools", [False, True])
def test_a_whitespace_only_conversation_is_refused(structured_tools):
    with pytest.raises(RequestRejectedError) as refused:
        chat_messages(user(" \n\t"), structured_tools=structured_tools)
    assert refused.value.message == "The query has no user message with text."
    assert refused.value.fix == "Send at least one non-empty user message."


def test_a_lone_surrogate_is_refused_naming_the_message_and_the_fix(http):
    adapter = CortexChatAdapter(chat_client())
    with pytest.raises(RequestRejectedError) as refused:
        adapter.process({"messages": [{"role": "system", "content": "Be brief."}, *user("caf\udce9")["messages"]]},
                        {}, None)
    assert "Message 1 holds invalid Unicode at character 3 (a lone surrogate)" in refused.value.message
    assert "errors='replace'" in refused.value.fix
    assert len(http.calls) == 0


def test_an_assistant_turn_that_only_calls_tools_still_passes():
    query = {"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "toolCalls": [{"id": "c1", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "toolOutputs": [{"callId": "c1", "output": "sunny"}]},
    ]}
    messages = chat_messages(query, structured_tools=True)
    assert messages[1]["content"] is None and messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
