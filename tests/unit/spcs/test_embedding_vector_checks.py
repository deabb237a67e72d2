"""Every row of an answer is checked on its own: a bad value anywhere in a long vector (NaN, an infinity, a boolean,
a string) or a vector of the wrong size fails that row alone, with its own typed error; whole numbers are floats."""

import math

import responses
from test_embedding_client import ENDPOINT, make_client, sent_rows

from spcs_llm.core.errors import BadResponseError

DIMENSION = 384
GOOD = [round(0.001 * i - 0.2, 6) for i in range(DIMENSION)]


def with_value_at(position: int, value: str) -> str:
    """GOOD as the service's JSON text, one value replaced (a NaN or an infinity is no orjson input: the stdlib
    decodes it, json_codec.py)."""
    values = [repr(x) for x in GOOD]
    values[position] = value
    return "[" + ", ".join(values) + "]"


OUTPUTS = {
    "good": repr(GOOD).replace("'", ""),
    "nan": with_value_at(200, "NaN"),
    "infinity": with_value_at(383, "-Infinity"),
    "boolean": with_value_at(100, "true"),
    "string": with_value_at(0, '"0.5"'),
    "null": with_value_at(7, "null"),
    "whole numbers": with_value_at(5, "1"),
    "short": repr(GOOD[:-1]),
}


def service(request):
    rows = ", ".join(f'[{i}, {{"output": {OUTPUTS[text]}}}]' for i, text in sent_rows(request))
    return 200, {}, '{"data": [' + rows + "]}"


@responses.activate
def test_each_bad_vector_fails_only_its_own_row_with_its_reason():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    texts = list(OUTPUTS)
    rows = make_client(rows_per_request=16).embed(texts).rows
    by_text = dict(zip(texts, rows))
    assert by_text["good"].vector == GOOD and by_text["good"].failure is None
    whole = by_text["whole numbers"].vector
    assert whole == [*GOOD[:5], 1.0, *GOOD[6:]] and all(type(x) is float for x in whole)
    for text in ("nan", "infinity"):
        assert isinstance(by_text[text].failure, BadResponseError), text
        assert "NaN or infinite" in by_text[text].error and by_text[text].vector is None
    for text in ("boolean", "string", "null"):
        assert isinstance(by_text[text].failure, BadResponseError), text
        assert "'Service protocol'" in by_text[text].failure.fix and by_text[text].vector is None
    assert isinstance(by_text["short"].failure, BadResponseError)
    assert "383-dimension vector where earlier ones had 384" in by_text["short"].error
    assert [row.error.startswith(f"Text #{i}: ") for i, row in enumerate(rows) if row.error] == [True] * 6


@responses.activate
def test_a_vector_of_finite_floats_is_returned_as_decoded():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    vector = make_client().embed(["good"]).rows[0].vector
    assert vector == GOOD and all(math.isfinite(x) and type(x) is float for x in vector)
