"""The llm.py files loaded as DSS loads them, answers checked with dataikuapi's real classes."""

import json

import pytest
import responses
from dataikuapi.dss.llm import DSSLLMCompletionResponse, DSSLLMEmbeddingsResponse
from dataikuapi.dss.llm_tracing import SpanBuilder
from dataikuapi.dss.llm_utils import _ChunkAggregator

from spcs_llm.core.errors import CredentialMissingError, RequestRejectedError
from spcs_standin.harness import load_component

CHAT = "https://chat-org-acct.snowflakecomputing.app"
EMBED = "https://embed-org-acct.snowflakecomputing.app"
TOKEN = "oauth-access-token-of-alice-0123456789"


def chat_config(**overrides):
    config = {
        "auth_type": "oauth",
        "oauth_preset": {"snowflake_oauth": TOKEN, "oauth_mode": "direct"},
        "endpoint": CHAT,
        "instance_family": "GPU_NV_S",
    }
    config.update(overrides)
    return config


def chat_service(request):
    row = json.loads(request.body)["data"][0][1]
    last = row["messages"][-1]["content"][0]["text"]
    return 200, {}, json.dumps({"data": [[0, {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {last}"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}]]})


@responses.activate
def test_chat_process_returns_dss_response_with_usage_and_trace():
    responses.add_callback(responses.POST, f"{CHAT}/__call__", callback=chat_service)
    model = load_component("spcs-chat", chat_config())
    trace = SpanBuilder("root")
    query = {"messages": [{"role": "system", "content": "sys"},
                          {"role": "user", "parts": [{"type": "TEXT", "text": "ping"}]}]}
    raw = model.process(query, {"temperature": 0, "maxOutputTokens": 0}, trace)
    response = DSSLLMCompletionResponse(raw_resp={**raw, "ok": True})
    assert response.success and response.text == "echo: ping"
    assert raw["promptTokens"] == 9 and raw["completionTokens"] == 2 and raw["totalTokens"] == 11
    assert raw["tokenCountsAreEstimated"] is False and raw["estimatedCost"] >= 0
    request = responses.calls[0].request
    assert request.headers["X-SF-SPCS-Authentication-Method"] == "OAUTH"
    span = trace.to_dict()["children"][0]
    assert span["attributes"]["spcs.endpoint"] == "chat-org-acct.snowflakecomputing.app"
    assert span["attributes"]["promptTokens"] == 9
    assert TOKEN not in json.dumps(trace.to_dict())


@responses.activate
def test_chat_stream_aggregates_like_dss():
    responses.add_callback(responses.POST, f"{CHAT}/__call__", callback=chat_service)
    model = load_component("spcs-chat", chat_config())
    chunks = model.process_stream({"messages": [{"role": "user", "content": "hi"}]}, {}, None)
    aggregator = _ChunkAggregator(chunks)
    produced = list(aggregator)
    assert "footer" in produced[-1] and all("chunk" in c for c in produced[:-1])
    assert aggregator.response["text"] == "echo: hi" and aggregator.response["totalTokens"] == 11


def test_missing_user_credential_fails_at_configuration():
    with pytest.raises(CredentialMissingError, match="Credentials"):
        load_component("spcs-chat", chat_config(oauth_preset={"snowflake_oauth": None}))


@responses.activate
def test_image_input_is_refused_clearly():
    model = load_component("spcs-chat", chat_config())
    query = {"messages": [{"role": "user", "parts": [{"type": "IMAGE_INLINE", "inlineImage": "aGk="}]}]}
    with pytest.raises(RequestRejectedError, match="image"):
        model.process(query, {}, None)
    assert not responses.calls


def embed_service(request):
    records = json.loads(request.body)["dataframe_records"]  # answered by position, like the real server
    rows = [(i, record["sentence"]) for i, record in enumerate(records)]
    return 200, {}, json.dumps({"data": [[i, {"output": [float(len(t)), 0.5]}] for i, t in rows]})


def embed_config():
    return {
        "auth_type": "service",
        "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-components"},
        "endpoint": EMBED,
    }


@responses.activate
def test_embeddings_batch_shape_with_per_row_errors():
    responses.add_callback(responses.POST, f"{EMBED}/encode", callback=embed_service)
    model = load_component("spcs-embeddings", embed_config())
    queries = [{"text": "abc"}, {"text": ""}, {"text": "hello"}, {"inlineImage": "aGk="}]
    raw = model.process({"queries": queries}, {}, None)
    assert raw["responses"][0] == {"embedding": [3.0, 0.5]} and raw["responses"][2] == {"embedding": [5.0, 0.5]}
    assert "empty" in raw["responses"][1]["errorMessage"] and "image" in raw["responses"][3]["errorMessage"]
    with pytest.raises(Exception, match="embedding request failed"):
        DSSLLMEmbeddingsResponse(raw).get_embeddings()
    ok = model.process({"queries": [{"text": "abc"}, {"text": "hello"}]}, {}, None)
    assert DSSLLMEmbeddingsResponse(ok).get_embeddings() == [[3.0, 0.5], [5.0, 0.5]]
    assert len(responses.calls) == 2  # each DSS call is one batched request


@responses.activate
def test_embeddings_single_text_shape():
    responses.add_callback(responses.POST, f"{EMBED}/encode", callback=embed_service)
    model = load_component("spcs-embeddings", embed_config())
    assert model.process({"text": "four"}, {}, None)["embedding"] == [4.0, 0.5]
    with pytest.raises(RequestRejectedError, match="empty"):
        model.process({"text": " "}, {}, None)


# Completion settings DSS may pass badly, with the setting's DSS name and the words of its valid range.
BAD_SETTINGS = [
    ({"temperature": "hot"}, "temperature", "a number from 0 to 2"),
    ({"temperature": 2.5}, "temperature", "a number from 0 to 2"),
    ({"temperature": True}, "temperature", "a number from 0 to 2"),
    ({"maxOutputTokens": -5}, "maxOutputTokens", "a whole number of at least 1"),
    ({"maxOutputTokens": 12.5}, "maxOutputTokens", "a whole number of at least 1"),
    ({"topP": 1.5}, "topP", "greater than 0 and at most 1"),
    ({"topP": 0}, "topP", "greater than 0 and at most 1"),
    ({"topK": -3}, "topK", "-1 or 0 for no limit, or at least 1"),
    ({"presencePenalty": -2.5}, "presencePenalty", "a number from -2 to 2"),
    ({"frequencyPenalty": "nan"}, "frequencyPenalty", "a number from -2 to 2"),
    ({"stopSequences": ["END", 7]}, "stopSequences", "a list of strings"),
    ({"logitBias": {"50256": 150}}, "logitBias", "from -100 to 100"),
]


@pytest.mark.parametrize("settings,name,valid", BAD_SETTINGS)
@responses.activate  # no URL registered: any request at all would fail with a ConnectionError instead
def test_chat_refuses_a_bad_generation_setting_before_any_request(settings, name, valid):
    model = load_component("spcs-chat", chat_config())
    query = {"messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(RequestRejectedError) as refused:
        model.process(query, settings, None)
    assert f"'{name}'" in refused.value.message and valid in refused.value.message
    assert f"Set '{name}' to" in refused.value.fix
    with pytest.raises(RequestRejectedError, match=f"'{name}'"):
        list(model.process_stream(query, settings, None))
    assert len(responses.calls) == 0


@responses.activate
def test_chat_sends_numeric_text_settings_as_numbers():
    responses.add_callback(responses.POST, f"{CHAT}/__call__", callback=chat_service)
    model = load_component("spcs-chat", chat_config())
    settings = {"temperature": "0.5", "maxOutputTokens": "64", "topP": 1, "frequencyPenalty": -2,
                "stopSequences": ["END"]}
    assert model.process({"messages": [{"role": "user", "content": "hi"}]}, settings, None)["text"] == "echo: hi"
    row = json.loads(responses.calls[0].request.body)["data"][0][1]
    assert (row["temperature"], row["max_completion_tokens"], row["top_p"]) == (0.5, 64, 1.0)
    assert row["frequency_penalty"] == -2.0 and row["stop"] == ["END"]
