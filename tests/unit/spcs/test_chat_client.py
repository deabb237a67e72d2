"""ChatClient over a mocked SPCS endpoint: both protocols, auto-detection, tokens, cost, streaming fallback."""

import json

import pytest
import responses

from error_checks import assert_fix
from spcs_llm.core.errors import ConfigurationError, RequestRejectedError
from spcs_llm.dss.generation import GenerationParams
from spcs_llm.spcs.chat import ChatClient, ChatResult
from spcs_llm.spcs.config import parse_chat_config

ENDPOINT = "https://chat-org-acct.snowflakecomputing.app"
PAT = "pat-secret-for-chat-tests"


def make_client(**overrides):
    config = {
        "auth_type": "service",
        "service_preset": {"service_auth": "pat", "pat": PAT},
        "endpoint": ENDPOINT,
        "max_attempts": 3,
        "instance_family": "GPU_NV_S",
        "dollars_per_credit": 3.0,
    }
    config.update(overrides)
    return ChatClient(parse_chat_config(config))


def openai_reply(request, text="Hello there.", prompt_tokens=12, completion_tokens=3):
    rows = json.loads(request.body)["data"]
    data = [
        [
            row[0],
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            },
        ]
        for row in rows
    ]
    return 200, {"Content-Type": "application/json"}, json.dumps({"data": data})


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@responses.activate
def test_openai_rows_exact_usage_and_cost():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=openai_reply)
    result = make_client().complete(MESSAGES, GenerationParams(temperature=0.0, max_tokens=20))
    assert result.text == "Hello there." and result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens, result.tokens_estimated) == (12, 3, False)
    assert result.protocol == "openai_chat"
    assert result.estimated_cost == pytest.approx(result.busy_seconds * 0.57 / 3600 * 3.0)
    sent = json.loads(responses.calls[0].request.body)["data"][0]
    assert sent[0] == 0
    row = sent[1]
    assert [m["role"] for m in row["messages"]] == ["system", "user"]
    assert row["temperature"] == 0.0 and row["max_completion_tokens"] == 20
    assert responses.calls[0].request.headers["Authorization"] == f'Snowflake Token="{PAT}"'


@responses.activate
def test_default_max_tokens_applies_when_caller_sets_none():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=openai_reply)
    make_client(default_max_tokens=77).complete(MESSAGES, GenerationParams())
    assert json.loads(responses.calls[0].request.body)["data"][0][1]["max_completion_tokens"] == 77


@responses.activate
def test_auto_falls_back_to_text_generation_and_remembers():
    calls = {"n": 0}

    def service(request):
        calls["n"] += 1
        row = json.loads(request.body)["data"][0][1]
        if "messages" in row:
            return 400, {}, json.dumps({"error": "Input data columns do not match the model signature"})
        prompt = row["inputs"]
        reply = {"outputs": [{"generated_text": prompt + " Hi! How can I help?</s>"}]}
        return 200, {}, json.dumps({"data": [[0, reply]]})

    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=service)
    client = make_client(model_family="zephyr")
    first = client.complete(MESSAGES, GenerationParams())
    assert first.protocol == "text_generation" and first.text.startswith("Hi! How can I help?")
    assert first.tokens_estimated is True and first.prompt_tokens > 0
    second = client.complete(MESSAGES, GenerationParams())
    assert second.protocol == "text_generation"
    assert calls["n"] == 3  # one refused OpenAI-rows attempt, then text generation twice
    prompt = json.loads(responses.calls[1].request.body)["data"][0][1]["inputs"]
    assert prompt.startswith("<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>")


@responses.activate
def test_text_generation_needs_a_family_it_can_name():
    client = make_client(protocol="text_generation")
    with pytest.raises(ConfigurationError, match="Model family"):
        client.complete(MESSAGES, GenerationParams())
    assert len(responses.calls) == 0


@responses.activate
def test_stream_without_sse_yields_one_chunk_then_result():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=openai_reply)
    events = list(make_client().stream(MESSAGES, GenerationParams()))
    assert events[0] == "Hello there."
    assert isinstance(events[-1], ChatResult) and events[-1].completion_tokens == 3
    assert len(events) == 2


@responses.activate
def test_stream_with_sse_passes_deltas_on():
    chunks = [
        {"choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    responses.add(responses.POST, f"{ENDPOINT}/__call__", body=body, content_type="text/event-stream")
    events = list(make_client().stream(MESSAGES, GenerationParams()))
    assert events[:2] == ["Hel", "lo"]
    final = events[-1]
    assert final.text == "Hello" and final.finish_reason == "stop" and final.prompt_tokens == 5


def pre_params_text_generation_service(request):
    """A text-generation service logged before snowflake-ml 1.38: its signature is ``inputs`` only."""
    row = json.loads(request.body)["data"][0][1]
    if set(row) != {"inputs"}:
        unexpected = sorted(set(row) - {"inputs"})
        error = f"Input data columns do not match the model signature: unexpected {unexpected}"
        return 400, {}, json.dumps({"error": error})
    generated = json.dumps([{"generated_text": row["inputs"] + "Hi! How can I help?</s>"}])
    return 200, {}, json.dumps({"data": [[0, {"outputs": generated}]]})


@responses.activate
def test_text_generation_without_params_sends_the_prompt_alone_and_remembers():
    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=pre_params_text_generation_service)
    client = make_client(protocol="text_generation", model_family="zephyr")
    first = client.complete(MESSAGES, GenerationParams(max_tokens=20, temperature=0.0))
    assert first.text == "Hi! How can I help?" and first.protocol == "text_generation"
    streamed = list(client.stream(MESSAGES, GenerationParams(max_tokens=20)))
    assert streamed[0] == "Hi! How can I help?"
    sent = [set(json.loads(call.request.body)["data"][0][1]) for call in responses.calls]
    assert sent == [{"inputs", "max_new_tokens", "do_sample"}, {"inputs"}, {"inputs"}]


@responses.activate
def test_auto_protocol_falls_back_through_text_generation_to_the_bare_prompt():
    def service(request):
        if "messages" in json.loads(request.body)["data"][0][1]:
            return 400, {}, json.dumps({"error": "Input data columns do not match the model signature"})
        return pre_params_text_generation_service(request)

    responses.add_callback(responses.POST, f"{ENDPOINT}/__call__", callback=service)
    result = make_client(model_family="zephyr").complete(MESSAGES, GenerationParams())
    assert result.text == "Hi! How can I help?" and len(responses.calls) == 3


@responses.activate
def test_a_bare_prompt_that_is_still_refused_raises():
    responses.add(responses.POST, f"{ENDPOINT}/__call__", status=400,
                  json={"error": "Input data columns do not match the model signature"})
    with pytest.raises(RequestRejectedError) as refused:
        make_client(protocol="text_generation", model_family="zephyr").complete(MESSAGES, GenerationParams())
    assert_fix(refused, "Service protocol", "SHOW FUNCTIONS IN MODEL")
    assert len(responses.calls) == 2
