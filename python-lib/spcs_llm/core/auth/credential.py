"""What a token source hands the transport, and what the cache keeps to renew it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

BEARER_TOKEN_TYPE_HEADER = "X-Snowflake-Authorization-Token-Type"


@dataclass(frozen=True)
class Credential:
    """The value sent as ``Authorization: Snowflake Token="<token>"`` plus extra headers, and when it stops
    being usable."""

    token: str = field(repr=False)
    expires_at: float  # time.time() seconds; float("inf") when unknown and long-lived (a PAT)
    extra_headers: dict[str, str] = field(default_factory=dict)
    kind: str = ""  # "oauth-direct", "oauth-session", "pat", "pat-exchanged", "keypair-exchanged", "cortex-…"
    # Snowflake REST APIs (Cortex) take ``Authorization: Bearer <token>`` and name the token's type in
    # ``X-Snowflake-Authorization-Token-Type`` (KEYPAIR_JWT, OAUTH, PROGRAMMATIC_ACCESS_TOKEN); empty: the SPCS form.
    bearer_token_type: str = ""

    def headers(self) -> dict[str, str]:
        if self.bearer_token_type:
            return {"Authorization": f"Bearer {self.token}", BEARER_TOKEN_TYPE_HEADER: self.bearer_token_type,
                    **self.extra_headers}
        return {"Authorization": f'Snowflake Token="{self.token}"', **self.extra_headers}


class TokenSource(Protocol):
    identity: str

    def credential(self) -> Credential: ...

    def renew(self, rejected: Credential) -> Credential: ...


@dataclass(frozen=True)
class MasterToken:
    """The long-lived token of a Snowflake session, able to renew its session token (``token-request``)."""

    token: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True)
class Grant:
    """One fetched credential as the cache keeps it: when it was fetched, and how it can be renewed."""

    credential: Credential
    fetched_at: float
    master: MasterToken | None = None

    def usable_until(self) -> float:
        """The last moment anything in this grant is worth keeping (the credential or its master token)."""
        return max(self.credential.expires_at, self.master.expires_at if self.master else 0.0)
