"""Credentials for the Cortex REST API: ``Authorization: Bearer <token>`` plus the token's type.

The Cortex REST API is a Snowflake REST API, authenticated as those are (Snowflake docs, "Authenticating
Snowflake REST APIs with Snowflake"): a key-pair JWT signed by the caller (``KEYPAIR_JWT``), an OAuth access
token (``OAUTH``) or a programmatic access token (``PROGRAMMATIC_ACCESS_TOKEN``), named in
``X-Snowflake-Authorization-Token-Type`` (without it Snowflake assumes OAUTH). Unlike the SPCS ingress, nothing is
exchanged: the JWT itself is the bearer token, re-signed before it expires or when Snowflake rejects it.
Credentials live in the same process-wide cache as the SPCS ones, under their own kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlparse

from spcs_llm.core.auth import identity_of
from spcs_llm.core.auth.cache import TOKEN_CACHE, TokenCache
from spcs_llm.core.auth.credential import Credential, Grant
from spcs_llm.core.auth.keypair import JWT_LIFETIME_SECONDS, build_assertion, load_private_key, public_key_fingerprint
from spcs_llm.core.auth.sources import CacheScope
from spcs_llm.core.config import AuthConfig
from spcs_llm.core.errors import AuthenticationError, ConfigurationError, CredentialMissingError, SpcsLlmError
from spcs_llm.core.redaction import get_logger, register_secret

LOG = get_logger(__name__)

KEYPAIR_JWT = "KEYPAIR_JWT"
OAUTH = "OAUTH"
PROGRAMMATIC_ACCESS_TOKEN = "PROGRAMMATIC_ACCESS_TOKEN"

CORTEX_ROLE_FIX = (
    "Cortex REST requests run under the user's DEFAULT role: it needs the SNOWFLAKE.CORTEX_USER database role "
    "(GRANT DATABASE ROLE SNOWFLAKE.CORTEX_USER TO ROLE <role>; ALTER USER <user> SET DEFAULT_ROLE = <role>)."
)
PAT_FIX = (
    "The PAT may be expired or revoked (SHOW USER PROGRAMMATIC ACCESS TOKENS FOR USER <user>); the user's network "
    "policy may not allow DSS's IP address; or " + CORTEX_ROLE_FIX
)


class BearerTokenSource:
    """A secret sent as is (a PAT or a DSS OAuth access token): only Snowflake's rejection ends it."""

    def __init__(self, scope: CacheScope, token: str, token_type: str, refusal: Callable[[], SpcsLlmError],
                 cache: TokenCache = TOKEN_CACHE):
        register_secret(token)
        self.identity = scope.identity
        self._key = scope.key(f"cortex-{token_type.lower()}")
        self._token = token
        self._token_type = token_type
        self._refusal = refusal
        self._cache = cache

    def credential(self) -> Credential:
        return self._cache.current(self._key, self._obtain)

    def renew(self, rejected: Credential) -> Credential:
        raise self._refusal()

    def _obtain(self, previous: Grant | None) -> Grant:
        credential = Credential(token=self._token, expires_at=float("inf"), kind=self._key[3],
                                bearer_token_type=self._token_type)
        return Grant(credential=credential, fetched_at=time.time())


class KeypairJwtSource:
    """A JWT signed with the preset's private key, used directly as the bearer token; signed again near expiry
    (59 min, like snowflake-ml's jwt_generator.py) or when Snowflake rejects it."""

    def __init__(self, scope: CacheScope, sign: Callable[[], str], cache: TokenCache = TOKEN_CACHE):
        self.identity = scope.identity
        self._key = scope.key("cortex-keypair-jwt")
        self._sign = sign
        self._cache = cache

    def credential(self) -> Credential:
        return self._cache.current(self._key, self._obtain)

    def renew(self, rejected: Credential) -> Credential:
        LOG.info("Snowflake rejected the key-pair JWT of identity %s; signing a new one.", self.identity)
        return self._cache.replace(self._key, rejected, self._obtain)

    def _obtain(self, previous: Grant | None) -> Grant:
        signed_at = time.time()
        credential = Credential(token=self._sign(), expires_at=signed_at + JWT_LIFETIME_SECONDS,
                                kind=self._key[3], bearer_token_type=KEYPAIR_JWT)
        return Grant(credential=credential, fetched_at=signed_at)


def cortex_token_source(auth: AuthConfig, account_url: str) -> BearerTokenSource | KeypairJwtSource:
    """The token source for this identity on this account."""
    host = (urlparse(account_url).hostname or "").lower()
    if auth.role:
        # Snowflake docs (Cortex REST API, "Setting up authorization"): "REST API requests use the user's default
        # role"; no request field chooses another.
        LOG.info("Cortex REST requests run under the user's default role; the preset's role %s is not applied.",
                 auth.role)
    if auth.kind == "oauth":
        if not auth.oauth_token:
            raise CredentialMissingError("No Snowflake OAuth token is available for your DSS user.")
        scope = CacheScope(identity_of("cortex-oauth", account_url, auth.user, auth.oauth_token), host, None)
        return BearerTokenSource(scope, auth.oauth_token, OAUTH, lambda: CredentialMissingError(
            f"Snowflake ({host}) rejected your OAuth access token for the Cortex REST API. It lives about "
            "10 minutes and only DSS can refresh it."))
    if auth.kind == "pat":
        if not auth.pat:
            raise ConfigurationError("The service-account preset has no programmatic access token.")
        scope = CacheScope(identity_of("cortex-pat", account_url, auth.user, auth.pat), host, None)
        return BearerTokenSource(scope, auth.pat, PROGRAMMATIC_ACCESS_TOKEN, lambda: AuthenticationError(
            f"Snowflake ({host}) rejected the programmatic access token (PAT) for the Cortex REST API.", fix=PAT_FIX))
    if auth.kind == "keypair":
        return _keypair_source(auth, account_url, host)
    raise ConfigurationError(f"Unknown authentication kind {auth.kind!r}.", fix="Use oauth, pat or keypair.")


def _keypair_source(auth: AuthConfig, account_url: str, host: str) -> KeypairJwtSource:
    if not auth.private_key_pem or not auth.user:
        raise ConfigurationError(
            "Key-pair authentication needs both a user and a PEM private key.",
            fix="Fill 'User' and 'Private key (PEM)' in the service-account preset.",
        )
    pem, passphrase, user = auth.private_key_pem, auth.private_key_passphrase, auth.user
    load_private_key(pem, passphrase)  # a bad key or passphrase is a configuration error, found before any request
    scope = CacheScope(
        identity_of("cortex-keypair", account_url, user, auth.account_identifier, pem, passphrase), host, None
    )

    def sign() -> str:
        key = load_private_key(pem, passphrase)
        LOG.debug("Signing a key-pair JWT for user %s (public key %s).", user.upper(), public_key_fingerprint(key))
        return build_assertion(account_url, auth.account_identifier, user, key)

    return KeypairJwtSource(scope, sign)
