"""What an OpenAI-chat service is sent: a conversation its model's template accepts, learnt from its refusals."""

import json
import logging

import pytest
import responses
from test_chat_client import ENDPOINT, make_client, openai_reply

from error_checks import assert_fix
from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.dss.generation import GenerationParams

AGENT_MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": '[Tool call] get_weather({"city": "Paris"})'},
    {"role": "user", "content": "[Output of tool get_weather]\n18 C"},
    {"role": "user", "content": "Umbrella?"},
]
# What snowml's inference server answers when apply_chat_template raises in _openai_chat_wrapper.py.
MISTRAL_REFUSAL = ("Prediction failed: TemplateError: Conversation roles must alternate "
                   "user/assistant/user/assistant/...")


def sent_messages(call_index: int) -> list[tuple[str, str]]:
    row = json.loads(responses.calls[call_index].request.body)["data"][0][1]
    return [(m["role"], "".join(part["text"] for part in m["content"])) for m in row["messages"]]


def system_refusing_service(request):
    """A Mistral v0.1-like service: 400 for a system message or roles out of alternation."""
    roles = [m["role"] for m in json.loads(request.body)["data"][0][1]["messages"]]
    if any(role != ("user" if i % 2 == 0 else "assistant") for i, role in enumerate(roles)):
        return 400, {}, json.dumps({"error": MISTRAL_REFUSAL})
    return openai_reply(request)


@responses.activate
def test_same_role_turns_are_merged_before_sending_even_when_the_family_is_unknown():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=openai_reply)
    make_client().complete(AGENT_MESSAGES, GenerationParams())
    assert sent_messages(0) == [
        ("system", "Be brief."),
        ("user", "Weather in Paris?"),
        ("assistant", '[Tool call] get_weather({"city": "Paris"})'),
        ("user", "[Output of tool get_weather]\n18 C\n\nUmbrella?"),
    ]


@responses.activate
def test_a_family_without_a_system_role_gets_it_folded_up_front():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=system_refusing_service)
    make_client(model_family="mistral").complete(AGENT_MESSAGES, GenerationParams())
    assert len(responses.calls) == 1
    assert sent_messages(0)[0] == ("user", "Be brief.\n\nWeather in Paris?")


@responses.activate
def test_a_template_refusal_is_retried_once_folded_and_remembered_for_the_endpoint(caplog):
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=system_refusing_service)
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="spcs_llm"):
        result = client.complete(AGENT_MESSAGES, GenerationParams())
    assert result.text == "Hello there."
    assert [role for role, _ in sent_messages(0)][0] == "system"
    assert sent_messages(1)[0] == ("user", "Be brief.\n\nWeather in Paris?")
    assert "refused the conversation" in caplog.text and "folded" in caplog.text
    client.complete(AGENT_MESSAGES, GenerationParams())
    assert len(responses.calls) == 3  # the second conversation went folded at once
    assert sent_messages(2)[0][0] == "user"


@responses.activate
def test_a_conversation_refused_even_folded_fails_with_the_templates_words_and_a_fix():
    responses.add(responses.POST, f"{ENDPOINT}/__call__", status=400, json={"error": MISTRAL_REFUSAL})
    with pytest.raises(RequestRejectedError, match="roles must alternate") as caught:
        make_client().complete(AGENT_MESSAGES, GenerationParams())
    assert "alternate user and assistant" in caught.value.fix
    assert len(responses.calls) == 2


@responses.activate
def test_an_ordinary_400_is_not_retried():
    responses.add(responses.POST, f"{ENDPOINT}/__call__", status=400, json={"error": "max_completion_tokens too big"})
    with pytest.raises(RequestRejectedError) as refused:
        make_client(protocol="openai_chat").complete(AGENT_MESSAGES, GenerationParams())
    assert_fix(refused, "Service protocol", "SHOW FUNCTIONS IN MODEL")
    assert len(responses.calls) == 1


@responses.activate
def test_a_refused_conversation_without_a_system_message_is_not_retried_in_the_same_form():
    responses.add(responses.POST, f"{ENDPOINT}/__call__", status=400, json={"error": MISTRAL_REFUSAL})
    with pytest.raises(RequestRejectedError, match="roles must alternate"):
        make_client().complete([{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Yo"}],
                               GenerationParams())
    assert len(responses.calls) == 1
