"""INTERFACE STUB — to be implemented. Pooled sessions, the per-endpoint limiter, the one retry policy.

``Transport(endpoint: EndpointConfig, tokens: TokenSource).post_json(route, body) -> CallResult``:
- one ``requests.Session`` per endpoint base URL per process, never following redirects;
- a process-wide limiter per endpoint: all threads together never exceed ``endpoint.max_parallelism``;
- auth headers from the token source; on 401 / 3xx / codes 390104, 390112, 390318 it calls
  ``tokens.renew(...)`` and tries once more, then raises ``AuthenticationError``;
- one tenacity policy for 429, 503, 504, 403-right-after-deploy and connection errors: exponential back-off with
  full jitter, honours Retry-After (capped), bounded by ``max_attempts`` and ``max_retry_seconds``; logs at INFO
  without secrets; 400/404/413/422 are never retried;
- every attempt's in-flight time is recorded in the endpoint's busy-time ledger (cost.py);
- maps final failures to typed errors from errors.py (413 → ``PayloadTooLargeError`` so callers can split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallResult:
    payload: Any  # parsed JSON body
    status: int
    attempts: int = 1
    renewals: int = 0
    busy_seconds: float = 0.0  # this call's share of the endpoint's busy time (all attempts)
    elapsed_seconds: float = 0.0
    retry_reasons: list[str] = field(default_factory=list)
