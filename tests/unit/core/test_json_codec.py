"""Answer decoding: orjson when installed, the stdlib otherwise, with the stdlib's values and errors either way."""

import json
import math
import random
from types import SimpleNamespace

import pytest
import responses

from spcs_llm.core import json_codec
from spcs_llm.core.auth import Credential
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.errors import BadResponseError
from spcs_llm.core.transport import Transport
from spcs_llm.spcs.protocol import parse_embedding_output, unwrap

BASE = "https://abc-org-acct.snowflakecomputing.app"
URL = f"{BASE}/encode"

MALFORMED = [b"", b"   ", b"[1, 2", b'{"data": [[0, {"output": [0.1,]}]]}', b"[1] trailing", b"nan", b"{'data': []}",
             b"\xff\xfe\xfd", b'{"data": [[0, {"output": [0.1, -]}]]}', b"upstream connect error"]
READ_ALIKE = [b"[NaN, Infinity, -Infinity]", b"[1e400, -1e400, 1e-400]", b'"\\ud800 lone surrogate"',
              b"\xef\xbb\xbf[1, 2]", "[1, 2.5]".encode("utf-16"), b'{"a": 1, "a": 2}', b"-0.0",
              b"9223372036854775807", b"[5e-324, 1.7976931348623157e308, 0.1000000000000000055511151231257827]"]

orjson_installed = pytest.mark.skipif(json_codec.orjson is None, reason="orjson is not installed here")


@pytest.fixture(params=["orjson", "stdlib"])
def library(request, monkeypatch):
    """Each test runs on the fast path (when orjson is installed) and on the stdlib fallback."""
    if request.param == "orjson" and json_codec.orjson is None:
        pytest.skip("orjson is not installed here")
    if request.param == "stdlib":
        monkeypatch.setattr(json_codec, "orjson", None)
    return request.param


def embedding_answer(rows: int, seed: int) -> bytes:
    """A body as a service writes it: rounded floats, full-precision reprs, exponents, integers and -0.0."""
    rng = random.Random(seed)
    numbers = [rng.uniform(-1, 1) for _ in range(300)] + [round(rng.uniform(-0.2, 0.2), 7) for _ in range(80)]
    vector = json.dumps(numbers + [1e-310, -0.0, 0, 3]).replace("0.0001", "1e-4")
    return ('{"data": [' + ", ".join(f'[{i}, {{"output": {vector}}}]' for i in range(rows)) + "]}").encode()


def typed(value):
    """A value with every number's exact type and repr, so 1 vs 1.0 and -0.0 vs 0.0 count as different."""
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    return (type(value).__name__, repr(value))


def test_an_embedding_answer_reads_to_the_stdlibs_exact_numbers(library):
    for seed in range(3):
        body = embedding_answer(8, seed)
        assert typed(json_codec.loads(body)) == typed(json.loads(body))


@pytest.mark.parametrize("body", READ_ALIKE)
def test_bodies_orjson_refuses_read_as_the_stdlib_reads_them(library, body):
    expected, actual = json.loads(body), json_codec.loads(body)
    if isinstance(expected, list) and any(isinstance(x, float) and math.isnan(x) for x in expected):
        assert [repr(x) for x in actual] == [repr(x) for x in expected]
    else:
        assert typed(actual) == typed(expected)


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_raise_the_stdlibs_error(library, body):
    with pytest.raises(ValueError) as stdlib_error:
        json.loads(body)
    with pytest.raises(ValueError) as codec_error:
        json_codec.loads(body)
    assert type(codec_error.value) is type(stdlib_error.value)
    assert str(codec_error.value) == str(stdlib_error.value)


@orjson_installed
def test_orjson_does_the_decoding_when_installed(monkeypatch):
    monkeypatch.setattr(json_codec, "json", SimpleNamespace(loads=lambda content: pytest.fail("stdlib was used")))
    assert json_codec.loads(b'{"data": [[0, {"output": [0.5, -0.25]}]]}') == {"data": [[0, {"output": [0.5, -0.25]}]]}


@orjson_installed
def test_an_integer_over_64_bits_reads_as_the_nearest_float_under_orjson():
    assert json_codec.loads(b"[18446744073709551616]") == [1.8446744073709552e19]


def transport() -> Transport:
    tokens = SimpleNamespace(identity="fake", credential=lambda: Credential("fake-token", expires_at=math.inf))
    return Transport(EndpointConfig(base_url=BASE, route="encode"), tokens, sleep=lambda seconds: None)


def test_a_malformed_answer_is_the_same_bad_response_on_both_paths(mocked, monkeypatch):
    mocked.add(responses.POST, URL, status=200, body=b'{"data": [[0, {"output": [0.1,', content_type="application/json")
    messages = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(json_codec, "orjson", None)
        with pytest.raises(BadResponseError, match="not JSON") as info:
            transport().post_json("encode", {"dataframe_records": [{"sentence": "hi"}]})
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_a_nan_vector_fails_only_its_row_on_both_paths(mocked, library):
    body = b'{"data": [[0, {"output": [0.1, NaN]}], [1, {"output": [0.1, 0.2]}], [2, {"outputs": "[Infinity]"}]]}'
    mocked.add(responses.POST, URL, status=200, body=body, content_type="application/json")
    outputs = unwrap(transport().post_json("encode", {"data": []}).payload, 3)
    with pytest.raises(BadResponseError, match="NaN or infinite"):
        parse_embedding_output(outputs[0], protocol="encode")
    assert parse_embedding_output(outputs[1], protocol="encode") == [0.1, 0.2]
    with pytest.raises(BadResponseError, match="NaN or infinite"):
        parse_embedding_output(outputs[2], protocol="predict")
