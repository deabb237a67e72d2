"""Per-row embedding errors keep their type and fix (issue 19, P2).

A batch answer carries each failed row's message as ``errorMessage``, as before; a single-text call re-raises the
row's original typed error, so a 429 stays a ``RateLimitedError`` with its fix instead of a fix-less
``RequestRejectedError``.
"""

import json

import pytest
import responses
from test_embedding_client import ENDPOINT, encode_service, make_client

from spcs_llm.core.errors import BadResponseError, RateLimitedError, RequestRejectedError
from spcs_llm.spcs.dss_adapter import EmbeddingAdapter


def rate_limited(_request):
    return 429, {}, json.dumps({"error": "Too many requests"})


@responses.activate
def test_a_single_text_that_was_rate_limited_raises_the_rate_limit_error_with_its_fix():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=rate_limited)
    adapter = EmbeddingAdapter(make_client(max_attempts=1))
    with pytest.raises(RateLimitedError) as raised:
        adapter.process({"text": "hello"}, {}, None)
    assert raised.value.status == 429
    assert raised.value.fix == RateLimitedError.default_fix and raised.value.fix


@responses.activate
def test_each_failed_row_keeps_its_typed_error_and_the_dss_answer_its_message():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=rate_limited)
    client = make_client(max_attempts=1)
    result = client.embed(["a", "b"])
    assert [type(row.failure) for row in result.rows] == [RateLimitedError, RateLimitedError]
    assert result.rows[0].error == f"Text #0: {result.rows[0].failure}"
    answer = EmbeddingAdapter(client).process({"queries": [{"text": "a"}, {"text": "b"}]}, {}, None)
    assert [r["errorMessage"] for r in answer["responses"]] == [f"Text #{i}: {result.rows[i].failure}" for i in (0, 1)]
    assert "Fix: " + RateLimitedError.default_fix in answer["responses"][0]["errorMessage"]


@responses.activate
def test_a_single_text_the_service_rejected_raises_the_rejection_with_its_fix():
    responses.add(responses.POST, f"{ENDPOINT}/encode", status=400, json={"error": "bad row"})
    with pytest.raises(RequestRejectedError) as raised:
        EmbeddingAdapter(make_client()).process({"text": "hello"}, {}, None)
    assert raised.value.status == 400 and raised.value.fix == RequestRejectedError.default_fix


@responses.activate
def test_a_row_the_service_answered_with_an_error_is_a_bad_response_with_the_row_fix():
    responses.add(responses.POST, f"{ENDPOINT}/encode", json={"data": [[0, {"error": "CUDA out of memory"}]]})
    with pytest.raises(BadResponseError, match="no embedding") as raised:
        EmbeddingAdapter(make_client()).process({"text": "hello"}, {}, None)
    assert "GET_SERVICE_LOGS" in raised.value.fix


@responses.activate
def test_rows_that_succeed_carry_no_failure():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    rows = make_client().embed(["a", "b"]).rows
    assert all(row.failure is None and row.error is None for row in rows)
