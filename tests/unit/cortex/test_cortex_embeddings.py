"""Cortex embeddings: batches in input order, nested vectors, and a failed batch failing only its own rows."""

import json

import responses
from cortex_support import EMBED_URL, embedding_client

from spcs_llm.cortex.dss_adapter import CortexEmbeddingAdapter


def answer(vectors, tokens=4):
    data = [{"object": "embedding", "index": i, "embedding": [v]} for i, v in reversed(list(enumerate(vectors)))]
    return {"object": "list", "model": "snowflake-arctic-embed-m-v1.5", "data": data, "usage": {"total_tokens": tokens}}


def test_texts_are_embedded_in_batches_and_returned_in_input_order(http):
    http.add(responses.POST, EMBED_URL, json=answer([[1.0, 0.0], [0.0, 1.0]]))
    http.add(responses.POST, EMBED_URL, json=answer([[0.5, 0.5]], tokens=2))
    adapter = CortexEmbeddingAdapter(embedding_client(rows_per_request=2))
    response = adapter.process({"queries": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}, {}, None)
    assert [r["embedding"] for r in response["responses"]] == [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    assert response["promptTokens"] == 6 and response["tokenCountsAreEstimated"] is False
    assert json.loads(http.calls[0].request.body) == {"model": "snowflake-arctic-embed-m-v1.5", "text": ["a", "b"]}


def test_a_failed_batch_fails_only_its_rows(http):
    http.add(responses.POST, EMBED_URL, status=400, json={"message": "input too long for model"})
    http.add(responses.POST, EMBED_URL, json=answer([[0.5, 0.5]], tokens=2))
    adapter = CortexEmbeddingAdapter(embedding_client(rows_per_request=2))
    response = adapter.process({"queries": [{"text": "a" * 10}, {"text": "b"}, {"text": "c"}]}, {}, None)
    first, second, third = response["responses"]
    assert "too long" in first["errorMessage"] and "too long" in second["errorMessage"]
    assert third == {"embedding": [0.5, 0.5]}


def test_empty_rows_get_their_own_error_without_a_request(http):
    http.add(responses.POST, EMBED_URL, json=answer([[1.0]], tokens=1))
    response = CortexEmbeddingAdapter(embedding_client()).process({"queries": [{"text": ""}, {"text": "x"}]}, {}, None)
    assert "errorMessage" in response["responses"][0] and response["responses"][1] == {"embedding": [1.0]}
    assert json.loads(http.calls[0].request.body)["text"] == ["x"]


def test_unembeddable_rows_get_the_spcs_component_errors_without_a_request(http):
    http.add(responses.POST, EMBED_URL, json=answer([[1.0]], tokens=1))
    texts = ["  \n", None, "caf\udce9", "x", "lorem ipsum " * 90_000]
    response = CortexEmbeddingAdapter(embedding_client()).process({"queries": [{"text": t} for t in texts]}, {}, None)
    blank, missing, surrogate, fine, huge = response["responses"]
    assert blank["errorMessage"].startswith("Text #0: the text is empty or only whitespace")
    assert "expected a text, got NoneType. Fix: pass strings only." in missing["errorMessage"]
    assert "lone surrogate" in surrogate["errorMessage"] and "errors='replace'" in surrogate["errorMessage"]
    assert "32,768-byte limit" in huge["errorMessage"] and "Fix: split long documents" in huge["errorMessage"]
    assert fine == {"embedding": [1.0]}
    assert len(http.calls) == 1 and json.loads(http.calls[0].request.body)["text"] == ["x"]


def test_a_single_text_that_was_rate_limited_raises_the_rate_limit_error_with_cortex_advice(http):
    """The row keeps its typed error and fix (issue 19, P2): not a fix-less RequestRejectedError."""
    import pytest

    from spcs_llm.core.errors import RateLimitedError

    http.add(responses.POST, EMBED_URL, status=429, json={"message": "Too many requests"})
    adapter = CortexEmbeddingAdapter(embedding_client(max_attempts=1))
    with pytest.raises(RateLimitedError) as raised:
        adapter.process({"text": "a"}, {}, None)
    assert raised.value.status == 429 and "CORTEX_REST_API_RATE_LIMIT_POLICIES" in raised.value.fix
