"""Token sources, the process-wide token cache, renewal (snowflake-ml ``utils/authentication.py``;
snowflake-connector ``auth/oauth.py``).

- ``Credential``: the value sent as ``Authorization: Snowflake Token="<token>"`` plus extra headers
  (``X-SF-SPCS-Authentication-Method: OAUTH`` for direct OAuth), and when it stops being usable.
- ``TokenSource.credential()`` returns a cached, still-valid credential (validity minus a margin) or makes one.
- ``TokenSource.renew(rejected)`` is called by the transport when the ingress rejected ``rejected`` (401, a
  Snowflake code 390104/390112/390318, or any 3xx). It drops it from the cache and returns a fresh one, or
  raises ``AuthenticationError`` / ``CredentialMissingError`` when nothing fresher can be had.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

import requests

from spcs_llm.core.auth.account import AccountClient
from spcs_llm.core.auth.cache import clear_token_cache
from spcs_llm.core.auth.credential import Credential, TokenSource
from spcs_llm.core.auth.keypair import build_assertion, load_private_key, public_key_fingerprint
from spcs_llm.core.auth.sources import (
    KEYPAIR_EXCHANGED,
    PAT_EXCHANGED,
    PAT_FIX,
    AutoOAuthSource,
    CacheScope,
    DirectOAuthSource,
    ExchangedOAuthSource,
    OAuthTokenExchangeSource,
    PatSource,
)
from spcs_llm.core.auth.token_exchange import jwt_bearer_form, pat_exchange_form
from spcs_llm.core.config import AuthConfig
from spcs_llm.core.errors import ConfigurationError, CredentialMissingError

__all__ = ["Credential", "TokenSource", "token_source_for", "clear_token_cache", "identity_of"]

IDENTITY_LENGTH = 16


def identity_of(kind: str, account_url: str | None, user: str | None, *secrets: str | None) -> str:
    """A short hash naming who calls; it keys caches and appears in logs, and never reveals the secret."""
    digest = hashlib.sha256("\x00".join([kind, account_url or "", user or "", *(s or "" for s in secrets)]).encode())
    return digest.hexdigest()[:IDENTITY_LENGTH]


def _host_only(endpoint_host: str) -> str:
    text = (endpoint_host or "").strip()
    host = urlparse(text).hostname if "://" in text else text.split("/")[0]
    if not host:
        raise ConfigurationError(
            "No endpoint host was given to authenticate against.",
            fix="Set 'Endpoint' to the ingress host from SHOW ENDPOINTS IN SERVICE <service>.",
        )
    return host.lower()


def token_source_for(auth: AuthConfig, endpoint_host: str, session: requests.Session | None = None) -> TokenSource:
    """The token source for this identity and endpoint; its credentials live in the process-wide cache."""
    host = _host_only(endpoint_host)
    if auth.kind == "oauth":
        return _oauth_source(auth, host, session)
    if auth.kind == "pat":
        return _pat_source(auth, host, session)
    if auth.kind == "keypair":
        return _keypair_source(auth, host, session)
    raise ConfigurationError(f"Unknown authentication kind {auth.kind!r}.", fix="Use oauth, pat or keypair.")


def _oauth_source(auth: AuthConfig, host: str, session: requests.Session | None) -> TokenSource:
    if not auth.oauth_token:
        raise CredentialMissingError("No Snowflake OAuth token is available for your DSS user.")
    scope = CacheScope(identity_of("oauth", auth.account_url, auth.user, auth.oauth_token), host, auth.role)
    direct = DirectOAuthSource(scope, auth.oauth_token)
    if auth.oauth_mode == "direct" or (auth.oauth_mode == "auto" and not auth.account_url):
        return direct  # auto without an account URL has nowhere to exchange the token
    client = AccountClient(
        auth.require_account_url("exchanging the OAuth token for a session"), session, auth.account_identifier
    )
    exchanged = ExchangedOAuthSource(scope, auth.oauth_token, client)
    if auth.oauth_mode == "exchange":
        return exchanged
    return AutoOAuthSource(direct, exchanged, switch_key=(client.account_url, host, auth.role or ""))


def _pat_source(auth: AuthConfig, host: str, session: requests.Session | None) -> TokenSource:
    if not auth.pat:
        raise ConfigurationError(
            "The service-account preset has no programmatic access token.",
            fix="Paste the token_secret of ALTER USER … ADD PROGRAMMATIC ACCESS TOKEN into the preset's 'PAT'.",
        )
    scope = CacheScope(identity_of("pat", auth.account_url, auth.user, auth.pat), host, auth.role)
    if not auth.pat_exchange:
        return PatSource(scope, auth.pat)
    client = AccountClient(auth.require_account_url("exchanging the PAT"), session, auth.account_identifier)
    pat = auth.pat
    return OAuthTokenExchangeSource(
        scope, PAT_EXCHANGED, "PAT exchange", lambda: (pat_exchange_form(pat, auth.role, host), PAT_FIX), client
    )


def _keypair_source(auth: AuthConfig, host: str, session: requests.Session | None) -> TokenSource:
    if not auth.private_key_pem or not auth.user:
        raise ConfigurationError(
            "Key-pair authentication needs both a user and a PEM private key.",
            fix="Fill 'User' and 'Private key (PEM)' in the service-account preset.",
        )
    client = AccountClient(auth.require_account_url("key-pair authentication"), session, auth.account_identifier)
    scope = CacheScope(
        identity_of(
            "keypair", auth.account_url, auth.user, auth.account_identifier, auth.private_key_pem,
            auth.private_key_passphrase,
        ),
        host,
        auth.role,
    )
    pem, passphrase, user, role = auth.private_key_pem, auth.private_key_passphrase, auth.user, auth.role

    def make_request() -> tuple[dict[str, str], str]:
        key = load_private_key(pem, passphrase)
        fingerprint = public_key_fingerprint(key)
        role_check = f"that role {role} is granted to that user" if role else "the user's default role"
        fix = (
            f"Register the key's public half for user {user.upper()} with ALTER USER {user} SET RSA_PUBLIC_KEY='…' "
            f"(DESC USER must show RSA_PUBLIC_KEY_FP = {fingerprint}); check the preset's user, {role_check}, "
            "and the account URL (or the account identifier, which the JWT names)."
        )
        assertion = build_assertion(client.account_url, client.account_identifier, user, key)
        return jwt_bearer_form(assertion, role, host), fix

    return OAuthTokenExchangeSource(scope, KEYPAIR_EXCHANGED, "key-pair token exchange", make_request, client)
