"""Truthful results: finish reasons the Python engine does not give, JSON that is JSON, only controls that apply."""

import json
import logging

import pytest
import responses
from test_chat_client import ENDPOINT, MESSAGES, make_client, openai_reply

from error_checks import assert_fix
from spcs_llm.core.errors import ConfigurationError, JsonOutputError, RequestRejectedError
from spcs_llm.dss.generation import GenerationParams, params_from_settings
from spcs_llm.spcs.dss_adapter import ChatAdapter, spcs_params

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA_SETTINGS = {"responseFormat": {"type": "json", "schema": SCHEMA}}


def service_answering(text, completion_tokens=3, finish_reason="stop"):
    def reply(request):
        status, headers, body = openai_reply(request, text=text, completion_tokens=completion_tokens)
        document = json.loads(body)
        document["data"][0][1]["choices"][0]["finish_reason"] = finish_reason
        return status, headers, json.dumps(document)

    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=reply)


def sent_row(index=0):
    return json.loads(responses.calls[index].request.body)["data"][0][1]


@responses.activate
def test_a_python_engine_reply_that_used_every_allowed_token_is_reported_as_length():
    service_answering("cut mid-sen", completion_tokens=20)
    result = make_client().complete(MESSAGES, GenerationParams(max_tokens=20))
    assert result.finish_reason == "length"


@responses.activate
def test_a_shorter_python_engine_reply_stays_stop():
    service_answering("Done.", completion_tokens=19)
    assert make_client().complete(MESSAGES, GenerationParams(max_tokens=20)).finish_reason == "stop"


@responses.activate
def test_a_vllm_engine_finish_reason_is_trusted():
    service_answering("Done.", completion_tokens=20, finish_reason="stop")
    assert make_client(engine="vllm").complete(MESSAGES, GenerationParams(max_tokens=20)).finish_reason == "stop"


@responses.activate
def test_the_dss_footer_says_length():
    service_answering("cut", completion_tokens=7)
    adapter = ChatAdapter(make_client())
    response = adapter.process({"messages": [{"role": "user", "content": "Hi"}]}, {"maxOutputTokens": 7}, None)
    assert response["finishReason"] == "length"


@responses.activate
def test_json_on_the_python_engine_is_not_sent_and_free_text_fails_clearly():
    service_answering("Sure! The city is Paris.")
    with pytest.raises(JsonOutputError, match="not JSON") as caught:
        make_client().complete(MESSAGES, params_from_settings(JSON_SCHEMA_SETTINGS))
    assert "response_format" not in sent_row()
    assert "ignores response_format" in str(caught.value) and "'Inference engine' to vllm" in caught.value.fix


@responses.activate
def test_json_that_does_not_fit_the_schema_fails_naming_where():
    service_answering('{"town": "Paris"}')
    with pytest.raises(JsonOutputError, match="does not match the requested schema.*'city' is a required property"):
        make_client().complete(MESSAGES, params_from_settings(JSON_SCHEMA_SETTINGS))


@responses.activate
def test_json_that_fits_is_returned_as_is():
    service_answering('{"city": "Paris"}')
    result = make_client().complete(MESSAGES, params_from_settings(JSON_SCHEMA_SETTINGS))
    assert json.loads(result.text) == {"city": "Paris"}


@responses.activate
def test_json_cut_at_max_tokens_says_so():
    service_answering('{"city": "Pa', completion_tokens=5, finish_reason="length")
    with pytest.raises(JsonOutputError, match="cut at the max output tokens") as caught:
        make_client(engine="vllm").complete(MESSAGES, params_from_settings({**JSON_SCHEMA_SETTINGS,
                                                                             "maxOutputTokens": 5}))
    assert "Raise max output tokens" in caught.value.fix


@responses.activate
def test_refuse_mode_fails_before_sending():
    with pytest.raises(ConfigurationError, match="cannot honour it") as caught:
        make_client(json_fallback="refuse").complete(MESSAGES, params_from_settings(JSON_SCHEMA_SETTINGS))
    assert "vllm" in caught.value.fix and len(responses.calls) == 0


@responses.activate
def test_a_vllm_service_is_sent_the_schema():
    service_answering('{"city": "Paris"}')
    make_client(engine="vllm", json_fallback="refuse").complete(MESSAGES, params_from_settings(JSON_SCHEMA_SETTINGS))
    assert sent_row()["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA, "strict": False}}


@responses.activate
def test_schema_less_json_goes_to_vllm_as_a_schema_for_any_object_and_is_checked():
    service_answering("[1, 2]")
    with pytest.raises(JsonOutputError, match="is not of type 'object'"):
        make_client(engine="vllm").complete(MESSAGES, params_from_settings({"responseFormat": {"type": "json"}}))
    assert sent_row()["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}, "strict": False}}


@responses.activate
def test_a_streamed_reply_is_checked_before_it_is_yielded():
    service_answering("not json")
    with pytest.raises(JsonOutputError) as caught:
        next(iter(make_client().stream(MESSAGES, params_from_settings(JSON_SCHEMA_SETTINGS))))
    assert_fix(caught, "vLLM", "'Inference engine'")


@responses.activate
def test_temperature_is_sent_only_when_dss_gives_one():
    service_answering("Hi")
    client = make_client()
    client.complete(MESSAGES, params_from_settings({"temperature": 0.2}))
    client.complete(MESSAGES, params_from_settings({}))
    assert sent_row(0)["temperature"] == 0.2 and "temperature" not in sent_row(1)


@responses.activate
def test_presence_penalty_is_dropped_with_a_warning_on_the_python_engine_only(caplog):
    service_answering("Hi")
    with caplog.at_level(logging.WARNING, logger="spcs_llm"):
        make_client().complete(MESSAGES, GenerationParams(presence_penalty=0.5))
    make_client(engine="vllm").complete(MESSAGES, GenerationParams(presence_penalty=0.5))
    assert "presence_penalty" not in sent_row(0) and sent_row(1)["presence_penalty"] == 0.5
    assert "presence_penalty is ignored" in caplog.text


@responses.activate
def test_a_text_generation_service_never_honours_json_even_on_vllm():
    with pytest.raises(ConfigurationError, match="cannot honour it"):
        make_client(protocol="text_generation", model_family="zephyr", engine="vllm", json_fallback="refuse").complete(
            MESSAGES, params_from_settings(JSON_SCHEMA_SETTINGS))
    assert len(responses.calls) == 0


def test_a_required_tool_call_is_refused_by_the_spcs_adapter_not_by_the_shared_settings_reader():
    required = {"tools": [{"type": "function", "function": {"name": "get_weather"}}],
                "toolChoice": {"type": "required"}, "temperature": 0.5}
    assert params_from_settings(required) == GenerationParams(temperature=0.5)
    with pytest.raises(RequestRejectedError, match="do not support tool calling") as refused:
        spcs_params(required)
    assert "without tools" in refused.value.fix
    assert spcs_params({**required, "toolChoice": {"type": "auto"}}) == GenerationParams(temperature=0.5)
