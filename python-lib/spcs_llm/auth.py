"""INTERFACE STUB — to be implemented. Token sources, the process-wide token cache, renewal.

Contract (spcs-protocol.md §A, §B; design.md "Token lifecycle"):
- ``Credential``: the value sent as ``Authorization: Snowflake Token="<token>"`` plus extra headers
  (``X-SF-SPCS-Authentication-Method: OAUTH`` for direct OAuth), and when it stops being usable.
- ``TokenSource.credential()`` returns a cached, still-valid credential (validity minus a margin) or makes one.
- ``TokenSource.renew(rejected)`` is called by the transport when the ingress rejected ``rejected`` (401, a
  Snowflake code 390104/390112/390318, or any 3xx). It drops it from the cache and returns a fresh one, or
  raises ``AuthenticationError`` / ``CredentialMissingError`` when nothing fresher can be had.
- Caches are keyed by (identity, endpoint host, role); identity is a hash of the user's credential, never the
  secret; one user's token is never returned for another's source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import requests

from .config import AuthConfig


@dataclass(frozen=True)
class Credential:
    token: str = field(repr=False)
    expires_at: float  # time.time() seconds; float("inf") when unknown and long-lived (a PAT)
    extra_headers: dict[str, str] = field(default_factory=dict)
    kind: str = ""  # "oauth-direct", "session", "exchanged", "pat" — for traces and logs

    def headers(self) -> dict[str, str]:
        return {"Authorization": f'Snowflake Token="{self.token}"', **self.extra_headers}


class TokenSource(Protocol):
    identity: str

    def credential(self) -> Credential: ...

    def renew(self, rejected: Credential) -> Credential: ...


def token_source_for(auth: AuthConfig, endpoint_host: str, session: requests.Session | None = None) -> TokenSource:
    """Build (or reuse from the process-wide cache) the token source for this identity and endpoint."""
    raise NotImplementedError
