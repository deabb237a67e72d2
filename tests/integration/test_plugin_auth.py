"""The plugin's components (the real python-llms/*/llm.py, loaded as DSS loads them) against the local stand-in:
every authentication mode, the DSS OAuth flow, and token renewal when the ingress stops accepting a token."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.errors import AuthenticationError, CredentialMissingError
from spcs_standin.harness import DssOAuthCredential, load_component
from spcs_standin.settings import StandinSettings
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages

CANNED = CANNED_EXCHANGES[1]  # "What is 2+2?" → "2+2 is 4." under greedy decoding
GREEDY = {"temperature": 0, "maxOutputTokens": 24}
OAUTH_METHOD_HEADER = "X-SF-SPCS-Authentication-Method"


def ask(model: Any) -> tuple[str, dict[str, Any]]:
    """One chat completion through the component; returns the text and the call's trace attributes."""
    trace = SpanBuilder("test")
    answer = model.process({"messages": chat_messages(CANNED.question)}, GREEDY, trace)
    return answer["text"], trace.to_dict()["children"][-1]["attributes"]


def embed_once(model: Any, text: str = "renewal probe") -> dict[str, Any]:
    trace = SpanBuilder("test")
    answer = model.process({"queries": [{"text": text}]}, {}, trace)
    assert len(answer["responses"][0]["embedding"]) == 384
    return trace.to_dict()["children"][-1]["attributes"]


def credential_kind(model: Any) -> str:
    """The kind of credential the component now sends (what the token cache holds for it)."""
    return model.adapter.client.transport.tokens.credential().kind


def test_dss_oauth_flow_then_refreshed_token_in_a_new_set_config(clean_stack, dss_config, presets):
    settings = StandinSettings()
    dss = DssOAuthCredential(clean_stack.account_url, settings.oauth_client_id, settings.oauth_client_secret,
                             settings.oauth_redirect_uri, f"refresh_token session:role:{settings.role}")
    first = dss.authorize()
    model = load_component("spcs-chat", dss_config("chat", presets.oauth(first)))
    assert ask(model)[0] == CANNED.answer

    refreshed = dss.refresh()
    assert refreshed != first
    renewed_model = load_component("spcs-chat", dss_config("chat", presets.oauth(refreshed)))
    text, attributes = ask(renewed_model)
    assert text == CANNED.answer and attributes["spcs.tokenRenewals"] == 0
    assert renewed_model.adapter.client.transport.tokens.credential().token == refreshed


AUTH_MODES = {
    "oauth-direct": (lambda s, p, key: p.oauth(s.issue_oauth_token(), "direct"), "oauth-direct"),
    "oauth-exchange": (lambda s, p, key: p.oauth(s.issue_oauth_token(), "exchange"), "oauth-session"),
    "oauth-auto": (lambda s, p, key: p.oauth(s.issue_oauth_token(), "auto"), "oauth-direct"),
    "pat-direct": (lambda s, p, key: p.pat(s.issue_pat()), "pat"),
    "pat-exchanged": (lambda s, p, key: p.pat(s.issue_pat(), exchange=True), "pat-exchanged"),
    "keypair": (lambda s, p, key: p.keypair(key), "keypair-exchanged"),
}


@pytest.fixture(scope="module")
def registered_key(local_stack, rsa_key_pem) -> str:
    """A generated RSA key whose public half is registered for the stand-in's user (ALTER USER … RSA_PUBLIC_KEY)."""
    private, public = rsa_key_pem()
    local_stack.register_public_key("LOCAL_USER", public)
    return private


@pytest.mark.parametrize("mode", sorted(AUTH_MODES))
def test_each_auth_mode_answers_through_the_chat_component(mode, clean_stack, dss_config, presets, registered_key):
    make_auth, expected_kind = AUTH_MODES[mode]
    model = load_component("spcs-chat", dss_config("chat", make_auth(clean_stack, presets, registered_key)))
    text, attributes = ask(model)
    assert text == CANNED.answer
    assert attributes["spcs.tokenRenewals"] == 0
    assert credential_kind(model) == expected_kind


def test_no_secret_reaches_the_client_logs(clean_stack, dss_config, presets, registered_key, caplog):
    secrets = [clean_stack.issue_oauth_token(), clean_stack.issue_pat(), registered_key]
    caplog.set_level(logging.DEBUG)
    for auth in (presets.oauth(secrets[0], "exchange"), presets.pat(secrets[1], exchange=True),
                 presets.keypair(secrets[2])):
        embed_once(load_component("spcs-embeddings", dss_config("embed", auth)))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Exchanged the OAuth access token" in logged  # the logs did record the exchanges...
    key_body = "".join(secrets[2].splitlines()[1:-1])
    for secret in (secrets[0], secrets[1], key_body[:64], key_body[-64:]):
        assert secret not in logged  # ...but never a token or a piece of the key


def test_oauth_auto_switches_to_session_tokens_when_the_ingress_refuses_direct_oauth(
    clean_stack, dss_config, presets, rewriting_proxy
):
    # The stand-in's ingress accepts direct OAuth; one that does not is emulated by dropping the header that
    # marks a direct OAuth token, which the stand-in's ingress then refuses with 401 like a bad token.
    def without_oauth_marker(headers: dict[str, str], _: int) -> dict[str, str]:
        return {k: v for k, v in headers.items() if k.lower() != OAUTH_METHOD_HEADER.lower()}

    proxy = rewriting_proxy(clean_stack.chat_url, without_oauth_marker)
    config = {**presets.oauth(clean_stack.issue_oauth_token(), "auto"), "endpoint": proxy.url}
    model = load_component("spcs-chat", config)
    text, attributes = ask(model)
    assert text == CANNED.answer and attributes["spcs.tokenRenewals"] == 1
    assert proxy.statuses == [401, 200]
    assert credential_kind(model) == "oauth-session"

    fresh_token_model = load_component(
        "spcs-chat", {**presets.oauth(clean_stack.issue_oauth_token(), "auto"), "endpoint": proxy.url}
    )
    assert ask(fresh_token_model)[0] == CANNED.answer
    assert proxy.statuses == [401, 200, 200]  # the switch is remembered for the ingress, not the token


def test_direct_oauth_refused_by_the_ingress_asks_the_user_to_reauthorise(
    clean_stack, dss_config, presets, rewriting_proxy
):
    proxy = rewriting_proxy(clean_stack.chat_url, lambda headers, _: {
        k: v for k, v in headers.items() if k.lower() != OAUTH_METHOD_HEADER.lower()})
    model = load_component("spcs-chat", {**presets.oauth(clean_stack.issue_oauth_token(), "direct"),
                                         "endpoint": proxy.url})
    with pytest.raises(CredentialMissingError, match="only DSS can refresh it") as failure:
        ask(model)
    assert "Authorise your Snowflake credential" in failure.value.fix


@pytest.mark.parametrize("mode", ["oauth-exchange", "pat-exchanged", "keypair"])
def test_tokens_expiring_mid_run_are_renewed_and_every_call_succeeds(
    mode, clean_stack, dss_config, presets, registered_key
):
    # The ingress refuses session / exchanged tokens older than 0.8 s, long before their announced expiry.
    clean_stack.set_faults("embed", token_expiry_s=0.8)
    clean_stack.stats("embed", reset=True)
    make_auth, _ = AUTH_MODES[mode]
    model = load_component("spcs-embeddings", dss_config("embed", make_auth(clean_stack, presets, registered_key)))
    renewals = [embed_once(model)["spcs.tokenRenewals"]]
    for _ in range(2):
        time.sleep(0.9)
        renewals.append(embed_once(model)["spcs.tokenRenewals"])
    assert renewals == [0, 1, 1]  # each later call found its token expired, renewed it once, and succeeded
    statuses = clean_stack.stats("embed")["statuses"]
    assert statuses == {"200": 3, "401": 2}


def test_a_login_redirect_from_the_ingress_renews_the_token(clean_stack, presets, rewriting_proxy):
    # The stand-in's ingress answers 302 (to its login page) when no token arrives; the first request loses it.
    def lose_token_once(headers: dict[str, str], number: int) -> dict[str, str]:
        return {k: v for k, v in headers.items() if k.lower() != "authorization"} if number == 0 else headers

    proxy = rewriting_proxy(clean_stack.embed_url, lose_token_once)
    model = load_component("spcs-embeddings",
                           {**presets.pat(clean_stack.issue_pat(), exchange=True), "endpoint": proxy.url})
    first_token = model.adapter.client.transport.tokens.credential().token
    attributes = embed_once(model)
    assert proxy.statuses == [302, 200] and attributes["spcs.tokenRenewals"] == 1
    assert model.adapter.client.transport.tokens.credential().token != first_token


def test_a_bad_pat_fails_with_a_fix_and_without_the_token(clean_stack, dss_config, presets):
    bad = "ver:1-hint:0-pat-not-a-real-token-0123456789"
    model = load_component("spcs-embeddings", dss_config("embed", presets.pat(bad)))
    with pytest.raises(AuthenticationError) as failure:
        embed_once(model)
    assert "PROGRAMMATIC ACCESS TOKEN" in failure.value.fix
    assert bad not in str(failure.value)


def test_an_unregistered_key_pair_names_the_key_fingerprint_to_register(clean_stack, dss_config, presets, rsa_key_pem):
    private, _ = rsa_key_pem()
    model = load_component("spcs-embeddings", dss_config("embed", presets.keypair(private)))
    with pytest.raises(AuthenticationError) as failure:
        embed_once(model)
    assert "RSA_PUBLIC_KEY_FP = SHA256:" in failure.value.fix
    assert "".join(private.splitlines()[1:-1])[:64] not in str(failure.value)
