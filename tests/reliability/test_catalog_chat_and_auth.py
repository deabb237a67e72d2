"""Catalog, chat component and credentials: bad prompts, bad services and bad environments, each with its specific
error and fix. Every case goes through the real ``python-llms/spcs-chat`` (or embeddings) component."""

from __future__ import annotations

import time

import pytest
from catalog_runner import Case, Env, chat_query, run_case, texts_query, unused_port
from reliability_configs import keypair_preset, model_config, oauth_preset, pat_preset

from spcs_llm.core.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialMissingError,
    InputTooLongError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServiceResumeTimeoutError,
    TransportError,
)
from spcs_standin.harness import load_component

CHAT = "spcs-chat"
EMBED = "spcs-embeddings"
HELLO = chat_query("Say hello.")
FAST_FAIL = {"max_attempts": 2, "max_retry_seconds": 5}  # persistent faults: give up after one retry


def oauth(env: Env, mode: str, ttl: float | None = None, role: str = "SPCS_LLM_USER") -> dict:
    return oauth_preset(env.stack.issue_oauth_token(ttl=ttl), env.stack.account_url, mode=mode, role=role)


def expire_a_session_and_its_master_token(env: Env) -> None:
    """First call logs in (session 2 s, master 3 s); then the session, its master token and the OAuth access
    token DSS handed over all expire — as when DSS's refresh token has expired and it cannot supply a new one.
    The case's call then uses that same user's config (``env.scratch["config"]``)."""
    stack = env.short_lived_stack
    token = stack.issue_oauth_token(ttl=3)
    config = model_config(stack.embed_url, oauth_preset(token, stack.account_url, mode="exchange"))
    assert "embedding" in load_component(EMBED, config).process({"text": "warm up"}, {}, None)
    time.sleep(3.2)
    env.scratch["config"] = config


CASES = [
    # --- bad prompts ------------------------------------------------------------------------------------------
    Case("chat-no-messages", CHAT, lambda env: env.chat(), {"messages": []},
         raises=RequestRejectedError, says="no user message with text", fix="non-empty user message"),
    Case("chat-whitespace-message", CHAT, lambda env: env.chat(), chat_query("  \n "),
         raises=RequestRejectedError, says="no user message with text", fix="non-empty user message"),
    Case("chat-lone-surrogate", CHAT, lambda env: env.chat(), chat_query("caf\udce9 menu, please"),
         raises=RequestRejectedError, says="lone surrogate", fix="errors='replace'"),
    Case("chat-image-part", CHAT, lambda env: env.chat(),
         {"messages": [{"role": "user", "parts": [{"type": "IMAGE_INLINE", "inlineImage": "aGk="}]}]},
         raises=RequestRejectedError, says="contains an image", fix="Remove the image"),
    Case("chat-required-tool-call", CHAT, lambda env: env.chat(), HELLO,
         settings={"tools": [{"type": "function", "function": {"name": "lookup"}}],
                   "toolChoice": {"type": "required"}},
         raises=RequestRejectedError, says="do not support tool calling", fix="without tools"),
    Case("chat-one-megabyte-prompt", CHAT, lambda env: env.misbehaving("too-long"), chat_query("lorem " * 200_000),
         raises=InputTooLongError, says="rejected the input as too long", fix="Shorten the input"),
    Case("chat-prompt-over-the-context-window", CHAT, lambda env: env.chat(), chat_query("lorem ipsum " * 1500),
         raises=InputTooLongError, says="maximum context length is 2048 tokens", fix="Shorten the input"),
    # --- bad model settings -----------------------------------------------------------------------------------
    Case("chat-wrong-protocol", CHAT, lambda env: env.chat(endpoint=env.stack.textgen_url, protocol="openai_chat"),
         HELLO, raises=RequestRejectedError, says="rejected the request (HTTP 400)", fix="'Service protocol'"),
    Case("chat-legacy-without-family", CHAT,
         lambda env: env.chat(endpoint=env.stack.textgen_url, protocol="text_generation"), HELLO,
         raises=ConfigurationError, says="cannot be guessed from the endpoint", fix="Set 'Model family'"),
    Case("no-endpoint", CHAT, lambda env: env.chat(endpoint=""), HELLO,
         raises=ConfigurationError, says="No endpoint is set", fix="SHOW ENDPOINTS IN SERVICE"),
    Case("setting-not-a-number", EMBED, lambda env: env.embed(max_parallelism="four"), texts_query(["a"]),
         raises=ConfigurationError, says="'max_parallelism' must be a number", fix="Correct the model's settings"),
    # --- bad service states -----------------------------------------------------------------------------------
    Case("service-suspended", CHAT, lambda env: env.chat(**FAST_FAIL, cold_start_timeout=2), HELLO,
         prepare=lambda env: env.stack.set_cold_start("chat", 120),
         raises=ServiceResumeTimeoutError, says="did not finish resuming within 2 s", fix="'Cold-start wait (s)'"),
    Case("service-overloaded-429", CHAT, lambda env: env.chat(**FAST_FAIL), HELLO,
         prepare=lambda env: env.stack.set_faults("chat", rate_429=1.0, retry_after_s=0),
         raises=RateLimitedError, says="kept rate limiting (HTTP 429)", fix="Lower 'Max parallelism'"),
    Case("read-timeout", CHAT, lambda env: env.chat(read_timeout=0.5), HELLO,
         prepare=lambda env: env.stack.set_faults("chat", latency_ms=1500),
         raises=TransportError, says="no answer within the read timeout of 0.5 s", fix="Raise 'Read timeout'"),
    Case("role-not-granted", CHAT, lambda env: env.chat(**FAST_FAIL), HELLO,
         prepare=lambda env: env.stack.revoke_role("chat", "SPCS_LLM_USER"),
         raises=PermissionDeniedError, says="kept answering HTTP 403", fix="GRANT SERVICE ROLE"),
    # --- missing or bad credentials ---------------------------------------------------------------------------
    Case("missing-oauth-credential", CHAT, lambda env: env.chat(oauth_preset(None, env.stack.account_url)), HELLO,
         raises=CredentialMissingError, says="No Snowflake OAuth token", fix="Authorize"),
    Case("missing-pat", EMBED, lambda env: env.embed(pat_preset("", env.stack.account_url)), texts_query(["a"]),
         raises=ConfigurationError, says="no programmatic access token", fix="ADD PROGRAMMATIC ACCESS TOKEN"),
    Case("expired-pat", EMBED, lambda env: env.embed(env.pat(ttl=0.001)), texts_query(["a"]),
         raises=AuthenticationError, says="rejected the programmatic access token", fix="PAT may be expired"),
    Case("unknown-pat", CHAT,
         lambda env: env.chat(pat_preset("pat-that-was-never-issued-31337", env.stack.account_url)), HELLO,
         raises=AuthenticationError, says="rejected the programmatic access token", fix="revoked"),
    Case("pat-restricted-to-another-role", CHAT,
         lambda env: env.chat(pat_preset(env.stack.issue_pat(role="PUBLIC"), env.stack.account_url, exchange=True)),
         HELLO, raises=AuthenticationError, says="restricted to role PUBLIC", fix="ROLE_RESTRICTION"),
    Case("expired-direct-oauth", CHAT, lambda env: env.chat(oauth(env, "direct", ttl=0.001)), HELLO,
         raises=CredentialMissingError, says="only DSS can refresh it", fix="Authorize"),
    Case("expired-oauth-exchange", EMBED, lambda env: env.embed(oauth(env, "exchange", ttl=0.001)),
         texts_query(["a"]), raises=CredentialMissingError, says="refused your OAuth access token as expired",
         fix="Authorize"),
    Case("expired-refresh", EMBED, lambda env: env.scratch["config"], texts_query(["a"]),
         prepare=expire_a_session_and_its_master_token,
         raises=CredentialMissingError, says="as expired", fix="Profile & Settings → Credentials"),
    Case("oauth-role-outside-scope", CHAT, lambda env: env.chat(oauth(env, "exchange", role="ANALYST")), HELLO,
         raises=CredentialMissingError, says="not allowed by the OAuth token's scope", fix="Authorize"),
    Case("unreachable-account-url", CHAT,
         lambda env: env.chat(oauth_preset(env.stack.issue_oauth_token(), f"http://127.0.0.1:{unused_port()}")),
         HELLO, raises=TransportError, says="Could not reach the Snowflake account", fix="'Snowflake account URL'"),
    Case("account-url-is-a-web-page", CHAT,
         lambda env: env.chat(oauth_preset(env.stack.issue_oauth_token(), env.server.url)), HELLO,
         raises=ConfigurationError, says="did not answer the OAuth login like a Snowflake account",
         fix="'Snowflake account URL'"),
    Case("keypair-not-registered", EMBED,
         lambda env: env.embed(keypair_preset(env.unregistered_key.private_pem, env.stack.account_url)),
         texts_query(["a"]), raises=AuthenticationError, says="refused the key-pair token exchange",
         fix="Register the key's public half"),
    Case("keypair-missing-passphrase", EMBED,
         lambda env: env.embed(keypair_preset(env.registered_key.encrypted_pem, env.stack.account_url)),
         texts_query(["a"]), raises=ConfigurationError, says="encrypted, but the preset gives no passphrase",
         fix="'Private key passphrase'"),
    Case("keypair-wrong-passphrase", EMBED,
         lambda env: env.embed(keypair_preset(env.registered_key.encrypted_pem, env.stack.account_url,
                                              passphrase="not-the-passphrase")),
         texts_query(["a"]), raises=ConfigurationError, says="wrong passphrase", fix="check the passphrase"),
    Case("keypair-not-a-key", EMBED,
         lambda env: env.embed(keypair_preset("this is not a PEM key", env.stack.account_url)),
         texts_query(["a"]), raises=ConfigurationError, says="could not be read", fix="BEGIN and END lines"),
]


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_chat_and_credential_catalog(case: Case, env, exposure):
    run_case(case, env, exposure)
