"""EmbeddingClient over a mocked endpoint: batching, parallelism, 413 splits, per-row errors, none lost."""

import json
import threading

import pytest
import responses

from error_checks import assert_fix
from spcs_llm.core.errors import AuthenticationError, RequestRejectedError
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingClient

ENDPOINT = "https://embed-org-acct.snowflakecomputing.app"


def make_client(**overrides):
    config = {
        "auth_type": "service",
        "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-embed-tests"},
        "endpoint": ENDPOINT,
        "rows_per_request": 4,
        "max_attempts": 2,
        "max_retry_seconds": 1,
    }
    config.update(overrides)
    return EmbeddingClient(parse_embedding_config(config))


def vector_for(text):
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


def sent_rows(request):
    """(row index, text) pairs of a request, whichever envelope it used; records are answered by position."""
    body = json.loads(request.body)
    if "dataframe_records" in body:
        assert set(body) == {"dataframe_records"}
        return [(i, record["sentence"]) for i, record in enumerate(body["dataframe_records"])]
    return [(row[0], row[1]) for row in body["data"]]


def encode_service(request):
    rows = sent_rows(request)
    return 200, {}, json.dumps({"data": [[i, {"output": vector_for(text)}] for i, text in rows]})


@responses.activate
def test_batches_by_rows_keep_order_and_count_tokens():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    texts = [f"text number {i}" for i in range(10)]
    result = make_client().embed(texts)
    assert [row.vector for row in result.rows] == [vector_for(t) for t in texts]
    assert result.requests == 3 and len(responses.calls) == 3
    sizes = sorted(len(sent_rows(c.request)) for c in responses.calls)
    assert sizes == [2, 4, 4]
    assert result.prompt_tokens > 0 and result.tokens_estimated is True


@responses.activate
def test_byte_budget_splits_batches():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    texts = ["x" * 600, "y" * 600, "z" * 600]
    result = make_client(rows_per_request=64, max_request_bytes=1400).embed(texts)
    assert all(row.vector for row in result.rows)
    assert all(len(c.request.body) <= 1400 for c in responses.calls) and len(responses.calls) >= 2


@responses.activate
def test_413_splits_until_rows_fit():
    def service(request):
        rows = sent_rows(request)
        if len(rows) > 1:
            return 413, {}, json.dumps({"error": "Request Entity Too Large"})
        return encode_service(request)

    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    texts = ["a1", "b22", "c333", "d4444"]
    result = make_client().embed(texts)
    assert [row.vector for row in result.rows] == [vector_for(t) for t in texts]


@responses.activate
def test_one_bad_row_fails_alone():
    def service(request):
        rows = sent_rows(request)
        if any(text == "poison" for _, text in rows):
            return 400, {}, json.dumps({"error": "Prediction failed: cannot embed poison"})
        return encode_service(request)

    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    texts = ["ok one", "poison", "ok two", "ok three", "ok four"]
    result = make_client().embed(texts)
    assert result.rows[1].vector is None and "poison" in result.rows[1].error and "Text #1" in result.rows[1].error
    for i in (0, 2, 3, 4):
        assert result.rows[i].vector == vector_for(texts[i])


@responses.activate
def test_unusable_inputs_get_their_own_errors_without_a_request():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    texts = ["fine", "   ", "bad \ud800 surrogate", "x" * 2_000_000, None]
    result = make_client().embed(texts)
    assert result.rows[0].vector == vector_for("fine")
    assert "empty" in result.rows[1].error
    assert "surrogate" in result.rows[2].error
    assert "request budget" in result.rows[3].error
    assert "expected a text" in result.rows[4].error
    assert result.failed == 4 and len(responses.calls) == 1


@responses.activate
def test_transient_failure_marks_only_its_batch():
    state = {"n": 0}
    lock = threading.Lock()

    def service(request):
        rows = sent_rows(request)
        if any(text.startswith("unlucky") for _, text in rows):
            return 429, {}, json.dumps({"error": "Too many requests"})
        with lock:
            state["n"] += 1
        return encode_service(request)

    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    texts = ["a", "b", "c", "d", "unlucky 1", "unlucky 2"]
    result = make_client().embed(texts)
    assert all(result.rows[i].vector for i in range(4))
    assert all("Text #" in result.rows[i].error for i in (4, 5))


@responses.activate
def test_wrong_dimension_is_a_row_error():
    def service(request):
        rows = sent_rows(request)
        return 200, {}, json.dumps({"data": [[i, {"output": [1.0] * (3 if t != "odd" else 5)}] for i, t in rows]})

    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    result = make_client(rows_per_request=1, max_parallelism=1).embed(["first", "odd", "last"])
    assert result.rows[0].vector and result.rows[2].vector
    assert "5-dimension" in result.rows[1].error


@responses.activate
def test_endpoint_level_errors_are_raised():
    responses.add(responses.POST, f"{ENDPOINT}/encode", status=401, json={"code": "390104", "message": "login again"})
    with pytest.raises(AuthenticationError) as refused:
        make_client().embed(["a", "b", "c", "d", "e"])
    assert_fix(refused, "SHOW USER PROGRAMMATIC ACCESS TOKENS")


@responses.activate
def test_signature_mismatch_is_not_bisected():
    responses.add(
        responses.POST, f"{ENDPOINT}/encode", status=400,
        json={"error": "Input data columns do not match the model signature"},
    )
    with pytest.raises(RequestRejectedError) as refused:
        make_client().embed([f"t{i}" for i in range(8)])
    assert_fix(refused, "'Request format'", "SHOW FUNCTIONS IN MODEL")
    assert len(responses.calls) <= 2


@responses.activate
def test_batches_group_texts_of_similar_length_and_results_keep_input_order():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    short = [f"s{i}" for i in range(4)]
    long = [f"a much longer text number {i} " * 20 for i in range(4)]
    texts = [t for pair in zip(short, long) for t in pair]  # short, long, short, long, …
    result = make_client(rows_per_request=4, max_parallelism=1).embed(texts)
    assert [row.vector for row in result.rows] == [vector_for(t) for t in texts]
    batches = [[text for _, text in sent_rows(c.request)] for c in responses.calls]
    assert batches[0] == long and batches[1] == short  # longest first, no padding of titles to paragraphs


@pytest.mark.parametrize("window_ms", [0, 5])
@responses.activate
def test_a_wrong_dimension_within_one_answer_fails_only_its_row(window_ms):
    """The dimension is looked up once per answer: the first vector sets it, later rows of the same answer are
    checked against it."""
    def service(request):
        rows = sent_rows(request)
        return 200, {}, json.dumps({"data": [[i, {"output": [1.0] * (3 if t != "odd" else 5)}] for i, t in rows]})

    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    result = make_client(rows_per_request=8, coalesce_window_ms=window_ms).embed(["first", "odd", "last"])
    assert len(responses.calls) == 1
    assert result.rows[0].vector == [1.0] * 3 and result.rows[2].vector == [1.0] * 3
    assert "5-dimension vector where earlier ones had 3" in (result.rows[1].error or "")
