"""The DSS OAuth emulation of the local harness, against a mocked account (no stand-in needed)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from spcs_standin.harness import DssOAuthCredential

ACCOUNT = "http://127.0.0.1:9"
REDIRECT = "http://127.0.0.1:11200/dip/api/oauth2-callback"


@pytest.fixture(autouse=True)
def _strict_oauthlib(monkeypatch):
    monkeypatch.delenv("OAUTHLIB_RELAX_TOKEN_SCOPE", raising=False)


@responses.activate
def test_refresh_accepts_an_answer_that_drops_the_refresh_token_scope():
    def authorize(request):
        query = parse_qs(urlparse(request.url).query)
        return 302, {"Location": f"{REDIRECT}?code=the-code&state={query['state'][0]}"}, ""

    responses.add_callback(responses.GET, f"{ACCOUNT}/oauth/authorize", callback=authorize)
    answers = iter([
        {"access_token": "first", "refresh_token": "r", "token_type": "Bearer", "expires_in": 600,
         "scope": "session:role:R refresh_token"},
        {"access_token": "second", "token_type": "Bearer", "expires_in": 600, "scope": "session:role:R"},
    ])
    responses.add_callback(responses.POST, f"{ACCOUNT}/oauth/token-request",
                           callback=lambda request: (200, {}, json.dumps(next(answers))))
    credential = DssOAuthCredential(ACCOUNT, "client", "secret", REDIRECT, "refresh_token session:role:R")
    assert credential.authorize() == "first"
    assert credential.refresh() == "second"
    assert "grant_type=refresh_token" in responses.calls[-1].request.body
