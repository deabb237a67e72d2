"""The chat connector's LoRA adapter setting: sent as the OpenAI-chat `model` param, refused on text generation."""

import json

import pytest
import responses

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.dss.generation import GenerationParams
from spcs_llm.spcs.chat import ChatClient
from spcs_llm.spcs.config import parse_chat_config

ENDPOINT = "https://lora-org-acct.snowflakecomputing.app"
MESSAGES = [{"role": "user", "content": "Name a color."}]
SIGNATURE_MISMATCH = {"error": "Input data columns do not match the model signature"}


def make_client(**overrides):
    config = {"auth_type": "service", "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-lora-tests"},
              "endpoint": ENDPOINT, "max_attempts": 2, "engine": "vllm", **overrides}
    return ChatClient(parse_chat_config(config))


def _reply(request):
    row_id = json.loads(request.body)["data"][0][0]
    output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Blue."}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    return 200, {"Content-Type": "application/json"}, json.dumps({"data": [[row_id, output]]})


def _sent_row() -> dict:
    return json.loads(responses.calls[0].request.body)["data"][0][1]


@responses.activate
def test_the_adapter_is_sent_as_the_model_param():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=_reply)
    result = make_client(adapter=" tiny_chat_lora ").complete(MESSAGES, GenerationParams(temperature=0.0))
    assert result.text == "Blue."
    assert _sent_row()["model"] == "tiny_chat_lora"


@responses.activate
def test_no_adapter_sends_no_model_param():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=_reply)
    make_client(adapter="").complete(MESSAGES, GenerationParams(temperature=0.0))
    assert "model" not in _sent_row()


def test_an_adapter_on_a_text_generation_service_is_a_configuration_error_naming_the_fix():
    with pytest.raises(ConfigurationError, match="LoRA adapter") as raised:
        make_client(adapter="tiny_chat_lora", protocol="text_generation")
    assert "OpenAI-chat" in str(raised.value.fix)


@responses.activate
def test_an_auto_detected_text_generation_service_with_an_adapter_is_a_configuration_error():
    responses.add(responses.POST, f"{ENDPOINT}/__call__", status=400, json=SIGNATURE_MISMATCH)
    with pytest.raises(ConfigurationError, match="cannot choose an adapter"):
        make_client(adapter="tiny_chat_lora", model_family="zephyr").complete(MESSAGES, GenerationParams())
    assert len(responses.calls) == 1


def test_an_adapter_on_the_python_engine_is_a_configuration_error_naming_the_fix():
    with pytest.raises(ConfigurationError, match="ignores the adapter") as raised:
        make_client(adapter="tiny_chat_lora", engine="python")
    assert "vLLM" in str(raised.value.fix)
