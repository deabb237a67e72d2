"""The one process-wide registry: what the connector keeps and learns per endpoint, under one lock, with one reset.

DSS runs many component instances and threads in one Python process; what they share is kept here, keyed by the
endpoint it concerns (its base URL, or its URL for what a backend learns about a route):

- the transport's ``EndpointState`` (pooled session, limiter) and the endpoint's busy-time ledger (``cost.py``);
- what a backend learns about an endpoint: the chat protocol it takes, whether its template folds the system
  message, the embedding dimension it answers (``spcs/chat.py``, ``spcs/embeddings.py``);
- process-wide values that belong to no endpoint (``PROCESS``): loaded tokenizers, the account calls' default
  session.

Credentials are not stored per endpoint alone: the token cache (``auth/cache.py``) keys them by (identity, endpoint,
role, kind), so one user's token is never found under another user's key; it registers its ``clear`` here, so that
``reset_process_state()`` forgets it with everything else. Values with a ``close()`` method (pooled sessions) are
closed when they are forgotten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
PROCESS = ""  # the key of values that belong to the whole process, not to one endpoint


def endpoint_key(url: str) -> str:
    """Endpoints are named by their URL without a trailing slash."""
    return url.rstrip("/")


class ProcessRegistry:
    """Named values per endpoint key; thread-safe. Names are dotted by owner, e.g. ``transport.state``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: a factory may look up another value (state → ledger)
        self._values: dict[tuple[str, str], Any] = {}
        self._reset_hooks: list[Callable[[], None]] = []

    def get(self, endpoint: str, name: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get((endpoint_key(endpoint), name), default)

    def setdefault(self, endpoint: str, name: str, factory: Callable[[], T]) -> T:
        """The value, created by ``factory`` (under the lock, so exactly once) on first use."""
        key = (endpoint_key(endpoint), name)
        with self._lock:
            if key not in self._values:
                self._values[key] = factory()
            return self._values[key]

    def put(self, endpoint: str, name: str, value: Any) -> None:
        with self._lock:
            self._values[(endpoint_key(endpoint), name)] = value

    def update(self, endpoint: str, name: str, change: Callable[[Any], T], default: Any = None) -> T:
        """Replace the value with ``change(current or default)`` atomically, and return the new value."""
        key = (endpoint_key(endpoint), name)
        with self._lock:
            value = self._values[key] = change(self._values.get(key, default))
            return value

    def forget(self, *names: str) -> None:
        """Forget the named values of every endpoint (closing those that hold resources)."""
        with self._lock:
            gone = [self._values.pop(key) for key in list(self._values) if key[1] in names]
        _close_all(gone)

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Have ``reset()`` call ``hook`` too: for process-wide state kept elsewhere (the token cache)."""
        with self._lock:
            if hook not in self._reset_hooks:
                self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Forget everything: every endpoint's values, the process-wide ones, and what the hooks clear."""
        with self._lock:
            gone = list(self._values.values())
            self._values.clear()
            hooks = list(self._reset_hooks)
        _close_all(gone)
        for hook in hooks:
            hook()


def _close_all(values: list[Any]) -> None:
    for value in values:
        close = getattr(value, "close", None)
        if callable(close):
            close()


REGISTRY = ProcessRegistry()


def reset_process_state() -> None:
    """Forget all process-wide state (tests, or after redeploying services or changing presets)."""
    REGISTRY.reset()
