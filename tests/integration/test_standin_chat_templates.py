"""OpenAI-chat services logged with a family's real chat template apply it as snowml's wrapper does
(tokenizer.apply_chat_template): strict templates refuse non-alternating conversations with a 400."""

from __future__ import annotations

import pytest
import requests

from spcs_llm.spcs.templates import template_source
from spcs_standin.tinychat import chat_model_dir

SYSTEM = {"role": "system", "content": "You are a tiny test model."}
USER = {"role": "user", "content": "Hi there"}
ASSISTANT = {"role": "assistant", "content": "Hello! I am a tiny test model."}


def _call(stack, family: str, messages: list[dict], headers) -> requests.Response:
    row = {"messages": messages, "temperature": 0.0, "max_completion_tokens": 8}
    return requests.post(f"{stack.chat_template_url(family)}/__call__", json={"data": [[0, row]]}, headers=headers,
                         timeout=120)


def _tokenizer(family: str):
    """The tiny model's tokenizer with ``family``'s template, as the resource holds it now."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chat_model_dir())
    tokenizer.chat_template = template_source(family)
    return tokenizer


def _template_error(family: str, messages: list[dict]) -> str | None:
    """What transformers' apply_chat_template raises for ``messages`` with ``family``'s template, if anything."""
    from jinja2.exceptions import TemplateError

    try:
        _tokenizer(family).apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("family", ["llama2", "mistral"])
@pytest.mark.parametrize("messages", [
    [USER, USER],  # two user turns in a row
    [USER, ASSISTANT, USER, {"role": "user", "content": "tool result: 4"}],  # a tool result sent as a user turn
    [ASSISTANT, USER],  # not starting with the user
])
def test_strict_templates_refuse_non_alternating_conversations(local_stack, pat_headers, family, messages):
    expected = _template_error(family, messages)
    assert expected is not None and "roles must alternate" in expected.lower()
    response = _call(local_stack, family, messages, pat_headers)
    assert response.status_code == 400
    assert response.json() == {"error": f"Prediction failed: TemplateError: {expected}"}


@pytest.mark.parametrize("family", ["llama2", "mistral"])
def test_strict_templates_answer_alternating_conversations(local_stack, pat_headers, family):
    response = _call(local_stack, family, [USER, ASSISTANT, {"role": "user", "content": "What is 2+2?"}], pat_headers)
    assert response.status_code == 200
    completion = response.json()["data"][0][1]
    assert completion["choices"][0]["finish_reason"] == "stop" and completion["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("family", ["llama2", "mistral"])
def test_a_system_message_is_refused_exactly_when_the_template_refuses_it(local_stack, pat_headers, family):
    expected = _template_error(family, [SYSTEM, USER])
    response = _call(local_stack, family, [SYSTEM, USER], pat_headers)
    if expected is None:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert response.json() == {"error": f"Prediction failed: TemplateError: {expected}"}


@pytest.mark.parametrize("family", ["chatml", "phi2", "falcon"])
def test_permissive_templates_take_system_and_consecutive_turns(local_stack, pat_headers, family):
    response = _call(local_stack, family, [SYSTEM, USER, USER], pat_headers)
    assert response.status_code == 200


@pytest.mark.parametrize("family", ["llama2", "mistral", "chatml", "phi2", "falcon"])
def test_each_service_renders_its_own_template(local_stack, pat_headers, family):
    """The prompt the service counts is the family's template rendered by transformers on the tiny tokenizer."""
    tokenizer = _tokenizer(family)
    conversation = [USER, ASSISTANT, {"role": "user", "content": "What is 2+2?"}]
    prompt = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    expected = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer = _call(local_stack, family, conversation, pat_headers).json()["data"][0][1]
    assert answer["usage"]["prompt_tokens"] == expected
