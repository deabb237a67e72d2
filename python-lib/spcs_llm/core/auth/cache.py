"""The process-wide token cache: reuse a credential until shortly before it expires, one fetch per key at a time.

Keys are ``(identity, endpoint host, role, credential kind)``. ``identity`` hashes the caller's secret, so a
fresher DSS access token (a new ``set_config``) lands on a new key and is used at once, and one user's token
can never be found under another user's key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from spcs_llm.core.auth.credential import Credential, Grant
from spcs_llm.core.registry import REGISTRY

MIN_MARGIN_SECONDS = 30.0
MARGIN_FRACTION = 0.1
EVICTION_GRACE_SECONDS = 60.0  # a slot this young may be about to be filled by the thread that made it
IDLE_EVICTION_SECONDS = 24 * 3600.0  # long-lived credentials (PATs, direct OAuth) no one asked for in a day

CacheKey = tuple[str, str, str, str]
Obtain = Callable[[Grant | None], Grant]


def refresh_margin(fetched_at: float, expires_at: float) -> float:
    """How long before expiry a credential stops being handed out: max(30 s, 10 %), at most half its life."""
    lifetime = expires_at - fetched_at
    if lifetime == float("inf"):
        return 0.0
    return min(max(MIN_MARGIN_SECONDS, MARGIN_FRACTION * lifetime), max(lifetime, 0.0) / 2)


def is_fresh(grant: Grant, now: float) -> bool:
    expires_at = grant.credential.expires_at
    return now < expires_at - refresh_margin(grant.fetched_at, expires_at)


@dataclass
class _Slot:
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    grant: Grant | None = None


class TokenCache:
    """Thread-safe credential store; the per-key lock makes concurrent callers wait for one fetch and share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[CacheKey, _Slot] = {}
        self._direct_refused: set[tuple[str, ...]] = set()

    def current(self, key: CacheKey, obtain: Obtain) -> Credential:
        """The cached credential while fresh, else ``obtain(previous grant)``'s, which is then cached."""
        slot = self._slot(key)
        with slot.lock:
            now = time.time()
            slot.last_used = now
            if slot.grant is not None and is_fresh(slot.grant, now):
                return slot.grant.credential
            slot.grant = obtain(slot.grant)
            return slot.grant.credential

    def replace(self, key: CacheKey, rejected: Credential, obtain: Obtain) -> Credential:
        """Drop ``rejected`` if it is still the cached credential and obtain another; if another thread has
        renewed it already, return that newer credential without fetching again."""
        slot = self._slot(key)
        with slot.lock:
            now = time.time()
            slot.last_used = now
            held = slot.grant
            if held is not None and held.credential.token != rejected.token and is_fresh(held, now):
                return held.credential
            slot.grant = None
            slot.grant = obtain(held)
            return slot.grant.credential

    def refuses_direct(self, switch_key: tuple[str, ...]) -> bool:
        with self._lock:
            return switch_key in self._direct_refused

    def mark_direct_refused(self, switch_key: tuple[str, ...]) -> bool:
        """Remember that an ingress refused direct OAuth; True when this call is the one that learnt it."""
        with self._lock:
            learnt = switch_key not in self._direct_refused
            self._direct_refused.add(switch_key)
            return learnt

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
            self._direct_refused.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)

    def _slot(self, key: CacheKey) -> _Slot:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                now = time.time()
                self._evict_spent(now)
                slot = self._slots[key] = _Slot(last_used=now)
            return slot

    def _evict_spent(self, now: float) -> None:
        """Forget slots whose tokens are all expired, or long idle, so old access tokens do not pile up."""
        for key, slot in list(self._slots.items()):
            if slot.lock.locked() or now - slot.last_used < EVICTION_GRACE_SECONDS:
                continue
            spent = slot.grant is None or slot.grant.usable_until() < now
            if spent or now - slot.last_used > IDLE_EVICTION_SECONDS:
                del self._slots[key]


TOKEN_CACHE = TokenCache()
# The cache keeps its own per-key locks (one fetch per key at a time) and its (identity, endpoint, role, kind) keys;
# the process registry's one reset clears it with everything else.
REGISTRY.on_reset(TOKEN_CACHE.clear)


def clear_token_cache() -> None:
    """Forget every cached credential and learnt preference (for tests, and after changing presets)."""
    TOKEN_CACHE.clear()
