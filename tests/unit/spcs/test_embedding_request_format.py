"""Embedding rows go in the envelope the service's signature accepts, sized exactly, and a refusal names the fix."""

import json
import logging
from pathlib import Path

import pytest
import responses

from spcs_llm.core.errors import ConfigurationError, RequestRejectedError
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.embedding_request import EmbeddingWireFormat
from spcs_llm.spcs.embeddings import EmbeddingClient
from spcs_llm.spcs.protocol import payload_size

ENDPOINT = "https://embed-org-acct.snowflakecomputing.app"


def config(**overrides):
    settings = {
        "auth_type": "service",
        "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-format-tests"},
        "endpoint": ENDPOINT,
        "max_attempts": 1,
    }
    settings.update(overrides)
    return parse_embedding_config(settings)


def answer_by_position(request):
    body = json.loads(request.body)
    count = len(body["dataframe_records"]) if "dataframe_records" in body else len(body["data"])
    return 200, {}, json.dumps({"data": [[i, {"output": [0.5, 0.25]}] for i in range(count)]})


@responses.activate
def test_encode_sends_dataframe_records_with_the_sentence_column_like_snowflakes_rest_tests():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=answer_by_position)
    result = EmbeddingClient(config()).embed(["first text", "second text"])
    assert [row.vector for row in result.rows] == [[0.5, 0.25], [0.5, 0.25]]
    body = json.loads(responses.calls[0].request.body)
    # registry_sentence_transformers_model_deployment_test.py sends dataframe_records; params keep their defaults.
    assert body == {"dataframe_records": [{"sentence": "first text"}, {"sentence": "second text"}]}


@responses.activate
def test_flat_rows_carry_a_null_for_every_signature_param():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=answer_by_position)
    EmbeddingClient(config(request_format="flat")).embed(["a", "b"])
    assert json.loads(responses.calls[0].request.body) == {"data": [[0, "a", None, None], [1, "b", None, None]]}


@responses.activate
def test_flat_rows_follow_the_signature_params_setting():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=answer_by_position)
    EmbeddingClient(config(request_format="flat", signature_params="batch_size")).embed(["a"])
    EmbeddingClient(config(request_format="flat", signature_params="none")).embed(["b"])
    assert json.loads(responses.calls[0].request.body) == {"data": [[0, "a", None]]}
    assert json.loads(responses.calls[1].request.body) == {"data": [[0, "b"]]}


@responses.activate
def test_records_use_the_input_column_setting():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=answer_by_position)
    EmbeddingClient(config(input_column="SENTENCES")).embed(["a"])
    assert json.loads(responses.calls[0].request.body) == {"dataframe_records": [{"SENTENCES": "a"}]}


@responses.activate
def test_custom_predict_defaults_to_its_one_positional_input():
    def predict(request):
        body = json.loads(request.body)
        return 200, {}, json.dumps({"data": [[row[0], {"outputs": "[1.0, 2.0]"}] for row in body["data"]]})

    responses.add_callback(responses.POST, f"{ENDPOINT}/predict", callback=predict)
    result = EmbeddingClient(config(protocol="predict")).embed(["x"])
    assert result.rows[0].vector == [1.0, 2.0]
    assert json.loads(responses.calls[0].request.body) == {"data": [[0, "x"]]}


def test_an_unknown_request_format_is_refused():
    with pytest.raises(ConfigurationError, match="request_format"):
        config(request_format="wide")


def test_the_format_used_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="spcs_llm"):
        EmbeddingClient(config())
    assert 'dataframe_records rows {"sentence": <text>}' in caplog.text


@responses.activate
def test_a_signature_mismatch_names_the_settings_to_fix():
    responses.add(responses.POST, f"{ENDPOINT}/encode", status=400,
                  json={"error": "Input data columns do not match the model signature"})
    with pytest.raises(RequestRejectedError) as refused:
        EmbeddingClient(config()).embed(["a", "b", "c"])
    text = str(refused.value)
    assert "do not match the model signature" in text and "dataframe_records" in text
    assert "'Request format'" in text and "'Input column'" in text and "'Signature params'" in text
    assert len(responses.calls) == 1


@pytest.mark.parametrize("request_format, params", [
    ("dataframe_records", ()), ("flat", ("batch_size", "truncate_dim")), ("flat", ()),
])
def test_the_byte_budget_matches_the_body_sent(request_format, params):
    wire = EmbeddingWireFormat(request_format, "sentence", params, max_rows=64)
    texts = ["héllo \"quoted\" ☃", "plain", "x" * 300, "\\ back \n slash"] * 16
    exact = wire.body_bytes(texts)
    sent = payload_size(wire.body(texts))
    if request_format == "dataframe_records":
        assert sent == exact
    else:  # row indexes below 10 have one digit fewer than the bound
        assert 0 <= exact - sent <= 10


@responses.activate
def test_a_batch_packed_to_the_byte_limit_is_sent_whole_and_within_it():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=answer_by_position)
    texts = ["y" * 480] * 4
    limit = EmbeddingWireFormat("dataframe_records", "sentence", (), max_rows=64).body_bytes(texts)
    EmbeddingClient(config(rows_per_request=64, max_request_bytes=limit)).embed(texts)
    assert len(responses.calls) == 1
    assert len(json.loads(responses.calls[0].request.body)["dataframe_records"]) == 4
    assert len(responses.calls[0].request.body) == limit


def test_the_embedding_component_offers_the_format_settings():
    llm_json = Path(__file__).resolve().parents[3] / "python-llms" / "spcs-embeddings" / "llm.json"
    params = {p["name"]: p for p in json.loads(llm_json.read_text())["params"] if "name" in p}
    assert params["request_format"]["label"] == "Request format"
    assert {c["value"] for c in params["request_format"]["selectChoices"]} == {"auto", "dataframe_records", "flat"}
    assert params["input_column"]["label"] == "Input column"
    assert params["signature_params"]["label"] == "Signature params (flat rows)"


@pytest.mark.parametrize("request_format, params", [("dataframe_records", ()), ("flat", ("batch_size",))])
def test_a_rows_size_is_what_json_dumps_writes_for_it(request_format, params):
    """row_bytes skips json.dumps' set-up but must count the same escaped bytes, whatever the characters."""
    wire = EmbeddingWireFormat(request_format, "sentence", params, max_rows=64)
    texts = ["\x00\x1f\x7f ctrl", "\u2028\u2029 separators", "astral 😀 𝔘", "tab\tquote\"slash\\/", "é" * 50, "a"]
    for text in texts:
        assert wire.row_bytes(text) - wire.row_bytes("") == len(json.dumps(text)) - len(json.dumps(""))
        if request_format == "dataframe_records":
            assert wire.body_bytes([text]) == payload_size(wire.body([text]))


@pytest.mark.parametrize("window_ms", [0, 5])
@responses.activate
def test_the_bytes_sent_for_a_text_are_the_bytes_its_size_check_measured(window_ms):
    """Each text is sized once (the size check) and packing reuses that size: at the budget it is sent in a
    body of exactly the measured length; a byte under it, the refusal names that length."""
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=answer_by_position)
    text = "z\u00e9\"\n" * 100
    measured = EmbeddingWireFormat("dataframe_records", "sentence", (), max_rows=64).body_bytes([text])
    sent = EmbeddingClient(config(max_request_bytes=measured, coalesce_window_ms=window_ms)).embed([text])
    assert sent.rows[0].vector is not None
    assert len(responses.calls[0].request.body) == measured
    refused = EmbeddingClient(config(max_request_bytes=measured - 1, coalesce_window_ms=window_ms)).embed([text])
    assert f"a {measured:,}-byte request" in (refused.rows[0].error or "")
    assert len(responses.calls) == 1
