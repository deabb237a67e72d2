"""Who may call the stand-in's Cortex endpoints, and how often: bearer auth, the CORTEX_USER grant, rate limits.

Sources (the Cortex connector's research note lists them with what each says):
- https://docs.snowflake.com/user-guide/snowflake-cortex/cortex-rest-api.html ("Submitting requests", "Setting up
  authorization"): ``Authorization: Bearer <token>`` with a key-pair JWT, an OAuth token or a programmatic access
  token; requests run under the user's default role, which needs the SNOWFLAKE.CORTEX_USER database role.
- Snowflake's REST API header description (copied in api-evangelist/snowflake's Postman collection):
  ``X-Snowflake-Authorization-Token-Type`` is KEYPAIR_JWT, OAUTH or PROGRAMMATIC_ACCESS_TOKEN; "If not specified,
  OAUTH is assumed."
- https://docs.snowflake.com/en/developer-guide/snowflake-rest-api/authentication: the key-pair JWT is the bearer
  token itself (iss ``<ACCOUNT>.<USER>.SHA256:<fp>``, sub ``<ACCOUNT>.<USER>``, at most 1 h).
- snowflake-ml-python 2.6.0 ``snowflake/cortex/_complete.py``: sends ``Authorization: Snowflake Token="<session
  token>"``; retries 429 after ``Retry-After``; reads the ``x-snowflake-request-id`` header.
- https://docs.snowflake.com/en/sql-reference/account-usage/cortex_rest_api_rate_limit_policies: limits are per
  model (requests and tokens per minute).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request

from spcs_standin.credentials import CredentialStore, KeyPairError, TokenKind, snowflake_token

TOKEN_TYPE_HEADER = "x-snowflake-authorization-token-type"
KEYPAIR_JWT, OAUTH, PROGRAMMATIC_ACCESS_TOKEN = "KEYPAIR_JWT", "OAUTH", "PROGRAMMATIC_ACCESS_TOKEN"
_KIND_OF_TYPE = {OAUTH: TokenKind.OAUTH_ACCESS, PROGRAMMATIC_ACCESS_TOKEN: TokenKind.PAT}


@dataclass(frozen=True)
class Caller:
    user: str
    role: str  # the user's default role: the one Cortex evaluates


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    retry_after_s: int | None = None


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``window_s`` seconds for one model (Cortex's RPM with a shorter window for tests)."""

    requests: int
    window_s: float = 60.0


@dataclass
class CortexStats:
    requests: int = 0
    streams: int = 0
    streams_cancelled: int = 0
    images: int = 0  # image parts accepted on chat completions
    statuses: Counter[int] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = {str(code): n for code, n in sorted(self.statuses.items())}
        out["by_model"] = dict(self.by_model)
        return out


class CortexAccess:
    """Run-time access state of the Cortex endpoints, changed through the stand-in's control routes."""

    def __init__(self, credentials: CredentialStore, default_role: str, keypair_jwt_max: int) -> None:
        self.credentials = credentials
        self.default_role = default_role.upper()
        self.keypair_jwt_max = keypair_jwt_max
        self.users_without_cortex_user: set[str] = set()
        self.rate_limits: dict[str, RateLimit] = {}
        self._recent: dict[str, deque[float]] = {}
        self.token_delay_s = 0.0  # a pause after each generated piece: a model's pace, so streaming is visible
        self.stats = CortexStats()

    def reset(self) -> None:
        self.token_delay_s = 0.0
        self.users_without_cortex_user.clear()
        self.rate_limits.clear()
        self._recent.clear()
        self.stats = CortexStats()

    def authenticate(self, request: Request) -> Caller | Refusal:
        """The caller, or a 401. Inferred: the body of Cortex's 401 is not documented; ``{"message": ...}``."""
        header = request.headers.get("authorization") or ""
        session_token = snowflake_token(header)
        if session_token is not None:  # snowflake-ml cortex/_complete.py sends a session token this way
            record = self.credentials.lookup(session_token)
            if record is None or record.kind is not TokenKind.SESSION or record.expired():
                return Refusal(401, "Authentication token is invalid or has expired.")
            return Caller(record.user, self.default_role)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Refusal(401, "Missing or malformed Authorization header: send 'Authorization: Bearer <token>'.")
        token = token.strip()
        token_type = (request.headers.get(TOKEN_TYPE_HEADER) or OAUTH).upper()  # "If not specified, OAUTH"
        if token_type == KEYPAIR_JWT:
            try:
                user = self.credentials.verify_keypair_jwt(token, self.keypair_jwt_max)
            except KeyPairError as refused:
                return Refusal(401, str(refused))
            return Caller(user, self.default_role)
        kind = _KIND_OF_TYPE.get(token_type)
        if kind is None:
            # Inferred: an unknown token type is refused like a bad token (the stricter reading).
            return Refusal(401, f"Unsupported {TOKEN_TYPE_HEADER} {token_type!r}: use KEYPAIR_JWT, OAUTH or "
                                "PROGRAMMATIC_ACCESS_TOKEN.")
        record = self.credentials.lookup(token)
        # Inferred: a token of another kind than its declared type is refused (stricter than guessing the kind).
        if record is None or record.kind is not kind:
            return Refusal(401, f"Invalid {token_type} token.")
        if record.expired():
            return Refusal(401, f"The {token_type} token has expired.")
        return Caller(record.user, self.default_role)

    def authorize(self, caller: Caller) -> Refusal | None:
        """403 when the caller's default role lacks SNOWFLAKE.CORTEX_USER (configured per user). Inferred: the
        body's wording; the docs only say the role needs the grant."""
        if caller.user in self.users_without_cortex_user:
            return Refusal(403, f"The default role {caller.role} of user {caller.user} does not have the "
                                "SNOWFLAKE.CORTEX_USER database role.")
        return None

    def admit(self, model: str, now: float | None = None) -> Refusal | None:
        """A 429 with Retry-After (seconds until the oldest request leaves the window) when over the model's limit.
        Inferred: the 429 body; Retry-After itself is what snowflake-ml's Cortex client honours."""
        limit = self.rate_limits.get(model)
        if limit is None:
            return None
        now = time.monotonic() if now is None else now
        recent = self._recent.setdefault(model, deque())
        while recent and now - recent[0] >= limit.window_s:
            recent.popleft()
        if len(recent) >= limit.requests:
            wait = max(1, math.ceil(recent[0] + limit.window_s - now))
            return Refusal(429, f"Too many requests for model {model}: the limit is {limit.requests} per "
                                f"{limit.window_s:g} s.", retry_after_s=wait)
        recent.append(now)
        return None
