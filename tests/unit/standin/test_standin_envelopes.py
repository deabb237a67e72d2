"""The stand-in's request envelopes, checked against the signatures snowml 2.6 records (no server, no model)."""

from __future__ import annotations

import json

import pytest
from snowflake.ml.model import openai_signatures
from snowflake.ml.model._signatures import core

from spcs_standin.envelopes import COLUMNS_MISMATCH, MALFORMED, EnvelopeError, MethodSignature, parse_request

# What sentence_transformers.py (_auto_infer_signature) records for MiniLM in 2.6: sentence → output, two params.
ENCODE = MethodSignature(("sentence",), (core.ParamSpec("batch_size", core.DataType.INT64, None),
                                         core.ParamSpec("truncate_dim", core.DataType.INT64, None)))
CHAT_SPEC = openai_signatures._OPENAI_CHAT_SIGNATURE_WITH_PARAMS_SPEC
CHAT = MethodSignature(tuple(s.name for s in CHAT_SPEC.inputs), tuple(CHAT_SPEC.params))
MESSAGES = [{"role": "user", "content": "Hi"}]


def _parse(payload: object, signature: MethodSignature = ENCODE):
    return parse_request(json.dumps(payload).encode(), signature)


def _refused(payload: object, signature: MethodSignature = ENCODE) -> str:
    with pytest.raises(EnvelopeError) as caught:
        _parse(payload, signature)
    return str(caught.value)


def test_a_flat_row_must_carry_every_column():
    # registry_custom_model_params_test.py: "Flat format requires ALL columns present".
    message = _refused({"data": [[0, "text"]]})
    assert message.startswith(COLUMNS_MISMATCH) and "sentence, batch_size, truncate_dim" in message
    assert "expected 3 values, got 1" in message and "null" in message
    assert _refused({"data": [[0, "text", None]]}).startswith(COLUMNS_MISMATCH)
    assert _refused({"data": [[0, "text", None, None, "extra"]]}).startswith(COLUMNS_MISMATCH)
    request = _parse({"data": [[0, "text", None, None], [1, "more", None, None]]})
    assert [(r.row_id, r.inputs) for r in request.rows] == [(0, {"sentence": "text"}), (1, {"sentence": "more"})]
    assert request.params == {"batch_size": None, "truncate_dim": None}


def test_a_short_flat_chat_row_is_refused_like_snowflakes_test():
    # registry_transformer_params_test.py: [0, messages, 0.8] → 400.
    assert _refused({"data": [[0, MESSAGES, 0.8]]}, CHAT).startswith(COLUMNS_MISMATCH)
    full = _parse({"data": [[0, MESSAGES, 0.8, 50, None, 1, False, 0.9, 0.05, 0.05, None, None]]}, CHAT)
    assert full.params["temperature"] == 0.8 and full.params["max_completion_tokens"] == 50
    assert full.params["stop"] == [] and full.params["n"] == 1  # null → the signature default


def test_unset_chat_params_take_the_signature_defaults():
    params = _parse({"data": [[0, {"messages": MESSAGES}]]}, CHAT).params
    assert params["temperature"] == 1.0 and params["max_completion_tokens"] == 250 and params["presence_penalty"] == 0.0


@pytest.mark.parametrize("payload", [
    {"data": [[0, {"sentence": "text", "truncate_dim": 8}]]},
    {"data": [[0, {"sentence": "text", "TRUNCATE_DIM": 8}]]},  # param names are case-insensitive (param_ops)
    {"dataframe_records": [{"sentence": "text"}], "params": {"truncate_dim": 8}},
    {"dataframe_split": {"index": [5], "columns": ["sentence"], "data": [["text"]]}, "params": {"truncate_dim": 8}},
    {"dataframe_records": [{"sentence": "text", "note": "x"}], "extra_columns": ["note"],
     "params": {"truncate_dim": 8, "batch_size": None}},
])
def test_wide_records_and_split_rows_are_accepted_with_their_params(payload):
    request = _parse(payload)
    assert [(r.row_id, r.inputs) for r in request.rows] == [(0, {"sentence": "text"})]  # split answers by position
    assert request.params == {"batch_size": None, "truncate_dim": 8}


@pytest.mark.parametrize(("payload", "message"), [
    ({"data": [[0, {"sentence": "text"}, 8, None]]}, COLUMNS_MISMATCH),  # trailing params after the object
    ({"data": [[0, {"sentence": "text", "note": "x"}]]}, COLUMNS_MISMATCH),  # unknown key in a wide row
    ({"data": [[0, {"truncate_dim": 8}]]}, COLUMNS_MISMATCH),  # missing input
    ({"dataframe_records": [{"sentence": "text", "note": "x"}]}, COLUMNS_MISMATCH),  # extra column not listed
    ({"dataframe_records": [{"sentence": "text", "truncate_dim": 8}]}, COLUMNS_MISMATCH),  # params belong in 'params'
    ({"dataframe_records": [{"sentence": "text"}], "params": {"dims": 8}}, MALFORMED),  # unknown param
    ({"dataframe_records": [{"sentence": "text"}], "params": {"truncate_dim": "8"}}, MALFORMED),  # wrong type
    ({"data": [[0, "text", 1.5, None]]}, MALFORMED),  # a float for an INT64 param
    ({"data": [[0, "text", None, None]], "params": {"truncate_dim": 8}}, MALFORMED),  # params beside 'data'
    ({"data": [[0, "a", 1, None], [1, "b", 2, None]]}, MALFORMED),  # rows with different params
    ({"dataframe_split": {"columns": ["sentence"], "data": [["a", "b"]]}}, MALFORMED),
    ({"data": [[0, "x", None, None]], "dataframe_records": []}, MALFORMED),
])
def test_what_the_stand_in_refuses(payload, message):
    assert _refused(payload).startswith(message)


def test_chat_params_are_type_checked_by_snowmls_param_ops():
    assert "not compatible with dtype" in _refused({"data": [[0, {"messages": MESSAGES, "temperature": "hot"}]]}, CHAT)
    wrong_group = {"data": [[0, {"messages": MESSAGES, "response_format": {"type": "json_schema", "bogus": 1}}]]}
    assert "Unknown key" in _refused(wrong_group, CHAT)
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    params = _parse({"dataframe_records": [{"messages": MESSAGES}], "params": {"response_format": schema}}, CHAT).params
    assert params["response_format"]["json_schema"]["schema"] == {"type": "object"}
