"""Secret scan: every auth mode, renewals and failures run with DEBUG logs of every logger, DSS traces, answers,
exception texts and the stand-in's own DEBUG log captured; no token, key or password may appear in any of them.

The scan itself runs after every test of this suite (the autouse ``exposure`` fixture in conftest.py); this module
adds the flows that produce every kind of secret, and checks that each kind was really produced and seen.
"""

from __future__ import annotations

import logging
import time

import pytest
from dataikuapi.dss.llm_tracing import SpanBuilder
from reliability_configs import keypair_preset, model_config, oauth_preset, pat_preset
from secret_ledger import Exposure, SecretLedger

from spcs_llm.core.errors import SpcsLlmError
from spcs_standin.harness import DssOAuthCredential, load_component
from spcs_standin.settings import StandinSettings

EXPIRY_S = 1.0
EXPECTED_KINDS = {
    "pat", "oauth-access", "oauth-refresh", "oauth-client-secret", "session", "master", "keypair-assertion",
    "private-key", "key-passphrase", "standin-admin-secret", "ingress-oauth-direct", "ingress-oauth-session",
    "ingress-pat", "ingress-pat-exchanged", "ingress-keypair-exchanged",
}


def _embed_twice_across_expiry(config: dict, exposure: Exposure) -> None:
    """Two calls more than a token lifetime apart: the second one is refused once and renews its credential."""
    model = load_component("spcs-embeddings", config)
    for text in ("first call", "second call, after the token expired"):
        trace = SpanBuilder("secret-scan")
        exposure.add_all([model.process({"queries": [{"text": text}]}, {}, trace), trace])
        time.sleep(EXPIRY_S + 0.1)


def _chat(config: dict, exposure: Exposure, *, stream: bool = False) -> None:
    model = load_component("spcs-chat", config)
    query = {"messages": [{"role": "user", "content": "Hello there."}]}
    trace = SpanBuilder("secret-scan")
    if stream:
        exposure.add_all([*model.process_stream(query, {"maxOutputTokens": 8}, trace), trace])
    else:
        exposure.add_all([model.process(query, {"maxOutputTokens": 8}, trace), trace])


def _fails(component: str, config: dict, exposure: Exposure) -> None:
    trace = SpanBuilder("secret-scan")
    with pytest.raises(SpcsLlmError) as raised:
        load_component(component, config).process({"queries": [{"text": "x"}]}, {}, trace)
    exposure.add_all([raised.value, trace])


def test_every_auth_mode_renewal_and_failure_leaves_no_secret_anywhere(clean, registered_key, unregistered_key,
                                                                         ledger: SecretLedger, exposure: Exposure):
    settings = StandinSettings()
    account = clean.account_url
    clean.set_faults("embed", token_expiry_s=EXPIRY_S)

    # Per-user OAuth, as DSS obtains it (authorization code with PKCE, then a refresh).
    credential = DssOAuthCredential(account, settings.oauth_client_id, settings.oauth_client_secret,
                                    settings.oauth_redirect_uri, f"refresh_token session:role:{settings.role}")
    token = credential.authorize()
    _chat(model_config(clean.chat_url, oauth_preset(token, account, mode="direct")), exposure)
    _chat(model_config(clean.chat_url, oauth_preset(token, account, mode="auto")), exposure, stream=True)
    _embed_twice_across_expiry(model_config(clean.embed_url, oauth_preset(token, account, mode="exchange")), exposure)
    refreshed = credential.refresh()
    _embed_twice_across_expiry(model_config(clean.embed_url, oauth_preset(refreshed, account)), exposure)

    # Service accounts: PAT sent as is, PAT exchanged, key pair (plain and passphrase-protected PEM).
    _chat(model_config(clean.chat_url, pat_preset(clean.issue_pat(), account)), exposure)
    _embed_twice_across_expiry(model_config(clean.embed_url, pat_preset(clean.issue_pat(), account, exchange=True)),
                               exposure)
    _embed_twice_across_expiry(model_config(clean.embed_url, keypair_preset(registered_key.private_pem, account)),
                               exposure)
    _chat(model_config(clean.chat_url, keypair_preset(registered_key.encrypted_pem, account,
                                                      passphrase="reliability-key-passphrase-7781")), exposure)

    # Failures, whose texts quote what the servers said.
    _fails("spcs-embeddings", model_config(clean.embed_url, pat_preset(clean.issue_pat(ttl=0.001), account)), exposure)
    _fails("spcs-embeddings", model_config(clean.embed_url, oauth_preset(clean.issue_oauth_token(ttl=0.001), account)),
           exposure)
    _fails("spcs-embeddings", model_config(clean.embed_url, keypair_preset(unregistered_key.private_pem, account)),
           exposure)
    _fails("spcs-embeddings", model_config(clean.embed_url, keypair_preset(
        registered_key.encrypted_pem, account, passphrase="a-wrong-passphrase-123")), exposure)

    assert EXPECTED_KINDS <= ledger.kinds(), f"flows did not produce: {EXPECTED_KINDS - ledger.kinds()}"
    seen = exposure.everything()
    for evidence in ("Renewed the Snowflake session token", "Obtained a pat-exchanged token",
                     "Obtained a keypair-exchanged token", "rejected the credential (HTTP 401)",
                     "answered HTTP 200", "spcs.tokenRenewals", "Fix: "):
        assert evidence in seen, f"the capture missed {evidence!r}: the scan would be vacuous"
    assert "spcs_standin.ingress: 401 on /encode (Authorization scheme" in exposure.standin_text(), \
        "the stand-in's own log was not captured"
    assert ledger.leaks(seen) == []


def test_the_scan_reports_a_planted_secret():
    """The scanner must be able to fail: a value it knows, written by a logger that redacts nothing, is found."""
    planted = SecretLedger()
    planted.add("pat", "planted-canary-secret-0123456789")
    probe = Exposure([])
    probe.start()
    try:
        logging.getLogger("reliability.canary").debug("token=%s", "planted-canary-secret-0123456789"[::-1])
        logging.getLogger("reliability.canary").debug("leaked %s", "planted-canary-secret-0123456789")
    finally:
        probe.stop()
    assert planted.leaks(probe.everything()) == ["pat: plante…"]
    assert planted.leaks(probe.log_text().splitlines()[0]) == []
