"""Token sources, one per way of authenticating; all keep their credentials in the process-wide cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from spcs_llm.core.auth.account import AccountClient
from spcs_llm.core.auth.cache import MIN_MARGIN_SECONDS, TOKEN_CACHE, CacheKey, TokenCache
from spcs_llm.core.auth.credential import Credential, Grant, MasterToken
from spcs_llm.core.auth.oauth_session import login_with_oauth, renew_session
from spcs_llm.core.auth.token_exchange import exchange_for_ingress_token
from spcs_llm.core.errors import AuthenticationError, CredentialMissingError
from spcs_llm.core.redaction import get_logger, register_secret

logger = get_logger(__name__)

OAUTH_DIRECT = "oauth-direct"
OAUTH_SESSION = "oauth-session"
PAT = "pat"
PAT_EXCHANGED = "pat-exchanged"
KEYPAIR_EXCHANGED = "keypair-exchanged"
OAUTH_METHOD_HEADER = "X-SF-SPCS-Authentication-Method"

PAT_FIX = (
    "The PAT may be expired or revoked (SHOW USER PROGRAMMATIC ACCESS TOKENS FOR USER <user>; make a new one with "
    "ALTER USER <user> ADD PROGRAMMATIC ACCESS TOKEN …); its ROLE_RESTRICTION role may lack the service role "
    "(GRANT SERVICE ROLE <db>.<schema>.<service>!ALL_ENDPOINTS_USAGE TO ROLE <role>); or the user's network policy "
    "may not allow DSS's IP address (add it, or use an authentication policy with "
    "PAT_POLICY = (NETWORK_POLICY_EVALUATION = ENFORCED_NOT_REQUIRED))."
)


@dataclass(frozen=True)
class CacheScope:
    """Who (``identity``), for which endpoint and role: the part of the cache key every source shares."""

    identity: str
    endpoint_host: str
    role: str | None

    def key(self, kind: str) -> CacheKey:
        return (self.identity, self.endpoint_host, self.role or "", kind)


class StaticTokenSource:
    """A secret sent as is and never fetched: its expiry is unknown, so only the ingress's rejection ends it.

    Subclasses name the credential ``kind``, its ``extra_headers``, and what a rejection means (``renew``).
    """

    kind: ClassVar[str]
    extra_headers: ClassVar[dict[str, str]] = {}

    def __init__(self, scope: CacheScope, token: str, cache: TokenCache = TOKEN_CACHE):
        register_secret(token)
        self.identity = scope.identity
        self._scope = scope
        self._token = token
        self._cache = cache

    def credential(self) -> Credential:
        return self._cache.current(self._scope.key(self.kind), self._obtain)

    def _obtain(self, previous: Grant | None) -> Grant:
        credential = Credential(token=self._token, expires_at=float("inf"), extra_headers=dict(self.extra_headers),
                                kind=self.kind)
        return Grant(credential=credential, fetched_at=time.time())


class DirectOAuthSource(StaticTokenSource):
    """The DSS per-user access token, sent as is; only DSS holds its refresh token, so it cannot be renewed."""

    kind = OAUTH_DIRECT
    extra_headers: ClassVar[dict[str, str]] = {OAUTH_METHOD_HEADER: "OAUTH"}

    def renew(self, rejected: Credential) -> Credential:
        logger.info(
            "Ingress %s rejected the direct OAuth token of identity %s.", self._scope.endpoint_host, self.identity
        )
        raise CredentialMissingError(
            f"The SPCS endpoint {self._scope.endpoint_host} rejected your Snowflake OAuth access token. It lives "
            "about 10 minutes and only DSS can refresh it."
        )


class ExchangedOAuthSource:
    """The access token exchanged for a Snowflake session token, renewed with the master token while it lives."""

    def __init__(
        self, scope: CacheScope, access_token: str, client: AccountClient, cache: TokenCache = TOKEN_CACHE
    ):
        register_secret(access_token)
        self.identity = scope.identity
        self._scope = scope
        self._access_token = access_token
        self._client = client
        self._cache = cache

    def credential(self) -> Credential:
        return self._cache.current(self._scope.key(OAUTH_SESSION), self._obtain)

    def renew(self, rejected: Credential) -> Credential:
        logger.info(
            "Ingress %s rejected a session token of identity %s; renewing.", self._scope.endpoint_host, self.identity
        )
        return self._cache.replace(self._scope.key(OAUTH_SESSION), rejected, self._obtain)

    def _obtain(self, previous: Grant | None) -> Grant:
        now = time.time()
        master = previous.master if previous else None
        if previous is not None and master is not None and now < master.expires_at - MIN_MARGIN_SECONDS:
            try:
                tokens = renew_session(self._client, previous.credential.token, master)
                logger.info("Renewed the Snowflake session token of identity %s with its master token.", self.identity)
                return self._grant(tokens.session_token, tokens.expires_at, tokens.master, now)
            except AuthenticationError as refusal:
                logger.info(
                    "Session renewal for identity %s refused (%s); logging in again.", self.identity, refusal.message
                )
        tokens = login_with_oauth(self._client, self._access_token, self._scope.role)
        logger.info("Exchanged the OAuth access token of identity %s for a Snowflake session.", self.identity)
        return self._grant(tokens.session_token, tokens.expires_at, tokens.master, now)

    @staticmethod
    def _grant(token: str, expires_at: float, master: MasterToken | None, fetched_at: float) -> Grant:
        credential = Credential(token=token, expires_at=expires_at, kind=OAUTH_SESSION)
        return Grant(credential=credential, fetched_at=fetched_at, master=master)


class AutoOAuthSource:
    """Direct OAuth first; once an ingress rejects a direct token, session tokens for good on that ingress.

    The switch is remembered per (account, endpoint host, role), not per access token: whether an ingress takes
    direct OAuth does not depend on the token, and DSS hands out a new token every few minutes."""

    def __init__(
        self,
        direct: DirectOAuthSource,
        exchanged: ExchangedOAuthSource,
        switch_key: tuple[str, ...],
        cache: TokenCache = TOKEN_CACHE,
    ):
        self.identity = direct.identity
        self._direct = direct
        self._exchanged = exchanged
        self._switch_key = switch_key
        self._cache = cache

    def credential(self) -> Credential:
        if self._cache.refuses_direct(self._switch_key):
            return self._exchanged.credential()
        return self._direct.credential()

    def renew(self, rejected: Credential) -> Credential:
        if rejected.kind != OAUTH_DIRECT:
            return self._exchanged.renew(rejected)
        if self._cache.mark_direct_refused(self._switch_key):
            logger.info(
                "Ingress %s rejected direct OAuth; switching to Snowflake session tokens (oauth_mode auto).",
                self._switch_key[1],
            )
        return self._exchanged.credential()


class PatSource(StaticTokenSource):
    """A programmatic access token, sent as is; long-lived, so a rejection is final."""

    kind = PAT

    def renew(self, rejected: Credential) -> Credential:
        logger.info("Ingress %s rejected the PAT of identity %s.", self._scope.endpoint_host, self.identity)
        raise AuthenticationError(
            f"The SPCS endpoint {self._scope.endpoint_host} rejected the programmatic access token (PAT).", fix=PAT_FIX
        )


ExchangeRequest = Callable[[], tuple[dict[str, str], str]]  # → (the /oauth/token form, the fix if refused)


class OAuthTokenExchangeSource:
    """A short-lived ingress token from ``/oauth/token`` (PAT exchange or key-pair JWT), fetched again near expiry
    or when the ingress rejects it."""

    def __init__(
        self,
        scope: CacheScope,
        kind: str,
        purpose: str,
        make_request: ExchangeRequest,
        client: AccountClient,
        cache: TokenCache = TOKEN_CACHE,
    ):
        self.identity = scope.identity
        self._scope = scope
        self._kind = kind
        self._purpose = purpose
        self._make_request = make_request
        self._client = client
        self._cache = cache

    def credential(self) -> Credential:
        return self._cache.current(self._scope.key(self._kind), self._obtain)

    def renew(self, rejected: Credential) -> Credential:
        logger.info("Ingress %s rejected a %s token of identity %s; exchanging again.",
                    self._scope.endpoint_host, self._kind, self.identity)
        return self._cache.replace(self._scope.key(self._kind), rejected, self._obtain)

    def _obtain(self, previous: Grant | None) -> Grant:
        form, fix = self._make_request()
        fetched_at = time.time()
        token, expires_at = exchange_for_ingress_token(self._client, form, purpose=self._purpose, fix=fix)
        logger.info("Obtained a %s token for identity %s at %s.", self._kind, self.identity, self._scope.endpoint_host)
        return Grant(credential=Credential(token=token, expires_at=expires_at, kind=self._kind), fetched_at=fetched_at)
