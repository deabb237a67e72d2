"""Catalog, embedding component: bad texts and bad endpoints, each with its specific error and fix.

Row-level problems (a bad text, one odd vector, one row the service forgot) cost only that row: the other rows of
the same DSS call keep exactly their own vectors. Endpoint-level problems (wrong URL, a web page, a wrong
protocol) raise one typed error for the call, because no row could succeed.
"""

from __future__ import annotations

import pytest
from catalog_runner import Case, run_case, texts_query, unused_port
from misbehaving_server import SMALL_BODY_LIMIT

from spcs_llm.core.errors import AuthenticationError, BadResponseError, EndpointNotFoundError, RequestRejectedError

EMBED = "spcs-embeddings"
GOOD = ["The harbour opens at dawn.", "Granite does not float.", "Tea is served at four."]


def batch_with(bad: object, position: int = 1) -> dict:
    """Three good texts with ``bad`` inserted at ``position``."""
    return texts_query([*GOOD[:position], bad, *GOOD[position:]])


CASES = [
    Case("empty-text", EMBED, lambda env: env.embed(), batch_with(""),
         failed_rows={1: "empty or only whitespace"}),
    Case("whitespace-text", EMBED, lambda env: env.embed(), batch_with(" \n\t  "),
         failed_rows={1: "Fix: filter out empty rows"}),
    Case("one-megabyte-text", EMBED, lambda env: env.embed(), batch_with("lorem ipsum " * 90_000, 0),
         failed_rows={0: "split long documents into chunks"}),
    Case("lone-surrogate", EMBED, lambda env: env.embed(), batch_with("caf\udce9 au lait", 3),
         failed_rows={3: "lone surrogate"}),
    Case("not-a-text", EMBED, lambda env: env.embed(), batch_with(None),
         failed_rows={1: "expected a text, got NoneType"}),
    Case("image-query", EMBED, lambda env: env.embed(), batch_with({"inlineImage": "aGVsbG8gd29ybGQ="}, 2),
         failed_rows={2: "image inputs cannot be embedded"}),
    Case("single-empty-text", EMBED, lambda env: env.embed(), {"text": "   "},
         raises=RequestRejectedError, says="empty or only whitespace", fix="filter out empty rows"),
    Case("query-without-texts", EMBED, lambda env: env.embed(), {"inputs": ["hello"]},
         raises=RequestRejectedError, says="neither 'queries' nor 'text'", fix="{'queries'"),
    Case("unreachable-endpoint", EMBED,
         lambda env: env.embed(endpoint=f"http://127.0.0.1:{unused_port()}", max_attempts=2),
         texts_query(GOOD), failed_rows={0: "Could not reach", 1: "after 2 attempts", 2: "Check network access"}),
    Case("wrong-route", EMBED, lambda env: env.embed(route="embed_text"), texts_query(GOOD),
         raises=EndpointNotFoundError, says="was not found (HTTP 404)", fix="SHOW ENDPOINTS IN SERVICE"),
    Case("chat-service-as-embedder", EMBED, lambda env: env.embed(endpoint=env.stack.chat_url), texts_query(GOOD),
         raises=EndpointNotFoundError, says="/encode was not found", fix="ingress_url"),
    Case("wrong-protocol", EMBED, lambda env: env.embed(endpoint=env.stack.chat_url, route="__call__"),
         texts_query(GOOD), raises=RequestRejectedError, says="rejected the request (HTTP 400)",
         fix="'Service protocol'"),
    Case("html-login-page-200", EMBED, lambda env: env.misbehaving("html-login"), texts_query(GOOD),
         raises=BadResponseError, says="an HTML login page instead of JSON", fix="not the Snowflake web UI"),
    Case("malformed-json", EMBED, lambda env: env.misbehaving("not-json"), texts_query(GOOD),
         raises=BadResponseError, says="a body that is not JSON", fix="'Service protocol'"),
    Case("not-an-envelope", EMBED, lambda env: env.misbehaving("no-envelope"), texts_query(GOOD),
         raises=BadResponseError, says="not a Snowflake model-service envelope", fix="names a model method"),
    Case("wrong-dimension", EMBED, lambda env: env.misbehaving("wrong-dimension"), batch_with("a SHORT vector", 2),
         failed_rows={2: "a 5-dimension vector where earlier ones had 384"}, healthy_vectors="fake"),
    Case("nan-in-vector", EMBED, lambda env: env.misbehaving("nan-vector"), batch_with("NAN please", 1),
         failed_rows={1: "NaN or infinite values"}, healthy_vectors="fake"),
    Case("row-missing-from-reply", EMBED, lambda env: env.misbehaving("missing-row"), batch_with("DROP me", 0),
         failed_rows={0: "missing from the service's reply"}, healthy_vectors="fake"),
    Case("ingress-body-limit-413", EMBED, lambda env: env.misbehaving("small-limit", rows_per_request=8),
         batch_with("a long paragraph " * (SMALL_BODY_LIMIT // 10), 2),
         failed_rows={2: "refused the request body as too large (HTTP 413)"}, healthy_vectors="fake"),
    Case("ingress-500-empty-data", EMBED, lambda env: env.misbehaving("empty-data"), texts_query(GOOD),
         raises=AuthenticationError, says="'empty data'", fix="Use direct OAuth"),
]


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_embedding_catalog(case: Case, env, exposure):
    run_case(case, env, exposure)
