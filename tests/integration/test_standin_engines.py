"""Python engine (snowml's wrapper) versus vLLM engine: response_format, finish reasons and usage."""

from __future__ import annotations

import json

import jsonschema
import pytest
import requests

from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40},
                                           "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
                                           "final": {"type": "boolean"}},
          "required": ["answer", "confidence", "final"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}}


def _complete(url: str, headers, **params) -> dict:
    row = {"messages": chat_messages(CANNED_EXCHANGES[0].question), "temperature": 0.0, **params}
    response = requests.post(f"{url}/__call__", json={"data": [[0, row]]}, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["data"][0][1]


def test_python_engine_ignores_response_format_and_always_says_stop(local_stack, pat_headers):
    completion = _complete(local_stack.chat_url, pat_headers, response_format=JSON_SCHEMA, max_completion_tokens=3,
                           presence_penalty=1.5, stream=True)
    choice = completion["choices"][0]
    assert choice["message"]["content"] == "Hello! I"  # free text, cut at 3 tokens, no JSON
    assert choice["finish_reason"] == "stop" and completion["usage"]["completion_tokens"] == 3


def test_vllm_engine_returns_json_that_validates_against_the_schema(local_stack, pat_headers):
    completion = _complete(local_stack.chat_vllm_url, pat_headers, response_format=JSON_SCHEMA)
    choice = completion["choices"][0]
    jsonschema.validate(json.loads(choice["message"]["content"]), SCHEMA)
    assert choice["finish_reason"] == "stop"
    usage = completion["usage"]
    assert usage["completion_tokens"] > 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_vllm_engine_reports_length_when_max_tokens_is_reached(local_stack, pat_headers):
    cut = _complete(local_stack.chat_vllm_url, pat_headers, max_completion_tokens=3)
    assert cut["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": "Hello! I", "name": None},
                                 "logprobs": None, "finish_reason": "length"}
    assert cut["usage"]["completion_tokens"] == 3
    whole = _complete(local_stack.chat_vllm_url, pat_headers, max_completion_tokens=64)
    assert whole["choices"][0]["message"]["content"] == CANNED_EXCHANGES[0].answer
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["usage"]["prompt_tokens"] == cut["usage"]["prompt_tokens"]


def test_vllm_engine_cuts_guided_json_at_max_tokens_with_length(local_stack, pat_headers):
    completion = _complete(local_stack.chat_vllm_url, pat_headers, response_format=JSON_SCHEMA, max_completion_tokens=4)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "length" and completion["usage"]["completion_tokens"] == 4
    with pytest.raises(ValueError):
        json.loads(choice["message"]["content"])


def test_vllm_engine_refuses_a_response_format_it_cannot_honour(local_stack, pat_headers):
    row = {"messages": chat_messages("Hi there"), "response_format": {"type": "json_object"}}
    response = requests.post(f"{local_stack.chat_vllm_url}/__call__", json={"data": [[0, row]]}, headers=pat_headers,
                             timeout=60)
    assert response.status_code == 400 and "response_format" in response.json()["error"]


def test_vllm_engine_stops_at_a_stop_string_with_stop(local_stack, pat_headers):
    row = {"messages": chat_messages(CANNED_EXCHANGES[4].question), "temperature": 0.0, "stop": ["several"],
           "max_completion_tokens": 64}
    response = requests.post(f"{local_stack.chat_vllm_url}/__call__", json={"data": [[0, row]]}, headers=pat_headers,
                             timeout=60)
    completion = response.json()["data"][0][1]
    assert completion["choices"][0]["message"]["content"] == "This is a longer reply, with "
    assert completion["choices"][0]["finish_reason"] == "stop" and completion["usage"]["completion_tokens"] < 64
