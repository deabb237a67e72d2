"""What one endpoint shares across the process: the pooled HTTP session, the parallelism limiter, the busy-time
ledger and what the endpoint has answered (warm, first 403), kept in the process registry by base URL so that
every DSS component instance and thread shares them; and one request's hold on them (``InFlight``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter

from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.cost import LEDGER, BusyTimeLedger, ledger_for
from spcs_llm.core.limiter import EndpointLimiter
from spcs_llm.core.registry import REGISTRY, endpoint_key
from spcs_llm.core.sessions import credential_session

MIN_POOL_SIZE = 10
# An idle model service suspends after 30 min without traffic (Snowflake docs, "Service Management & Scaling":
# min_instances 0). Within that window of a 2xx a 503 means "overloaded"; otherwise it may be a resume.
WARM_WINDOW_SECONDS = 1800.0


@dataclass
class EndpointState:
    """What one endpoint shares across the process."""

    base_url: str
    session: requests.Session
    limiter: EndpointLimiter
    ledger: BusyTimeLedger
    pool_size: int
    last_2xx_at: float | None = None
    first_403_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def close(self) -> None:
        """Close the pooled connections (the registry calls this when it forgets the endpoint)."""
        self.session.close()

    def record_success(self, now: float) -> None:
        with self.lock:
            self.last_2xx_at = now

    @property
    def answered_2xx(self) -> bool:
        """Whether the endpoint has ever answered 2xx in this process (a model service really is there)."""
        return self.last_2xx_at is not None

    def warm(self, now: float) -> bool:
        """Answered 2xx recently enough that it cannot have suspended since."""
        with self.lock:
            return self.last_2xx_at is not None and now - self.last_2xx_at < WARM_WINDOW_SECONDS

    def within_deploy_403_window(self, now: float, window: float) -> bool:
        """403 counts as "routing still propagating" only until the endpoint first answers 2xx, for ``window`` s."""
        with self.lock:
            if self.answered_2xx:
                return False
            if self.first_403_at is None:
                self.first_403_at = now
            return now - self.first_403_at < window


STATE = "transport.state"  # the endpoint's EndpointState in the process registry


def _mount_pool(session: requests.Session, pool_size: int) -> requests.Session:
    """Keep up to ``pool_size`` connections open; retries are ours (tenacity), never urllib3's."""
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _new_state(key: str, limit: int, clock: Callable[[], float]) -> EndpointState:
    pool_size = max(limit, MIN_POOL_SIZE)
    return EndpointState(
        base_url=key, session=_mount_pool(credential_session(), pool_size),
        limiter=EndpointLimiter(limit, name=key, clock=clock), ledger=ledger_for(key), pool_size=pool_size,
    )


def configured_state(endpoint: EndpointConfig, clock: Callable[[], float] = time.monotonic) -> EndpointState:
    """The endpoint's shared state (in the process registry), created on first use; the latest limit wins."""
    key = endpoint_key(endpoint.base_url)
    limit = endpoint.max_parallelism
    created: list[EndpointState] = []

    def create() -> EndpointState:
        created.append(_new_state(key, limit, clock))
        return created[0]

    state = REGISTRY.setdefault(key, STATE, create)
    if not created:
        with state.lock:
            state.limiter.resize(limit)
            if limit > state.pool_size:
                state.pool_size = limit
                _mount_pool(state.session, limit)
    return state


def endpoint_state(base_url: str) -> EndpointState | None:
    """The shared session, limiter and ledger of an endpoint, or None before any Transport used it."""
    return REGISTRY.get(base_url, STATE)


def reset_endpoint_registry() -> None:
    """Close every pooled session and forget all endpoint state and ledgers (tests; ``reset_process_state`` forgets
    everything the process learnt)."""
    REGISTRY.forget(STATE, LEDGER)


class InFlight:
    """One HTTP request's limiter slot and ledger share, released exactly once."""

    def __init__(self, state: EndpointState):
        self._state = state
        self._lock = threading.Lock()
        self._done = False
        self.generation = state.limiter.acquire()
        try:
            self.share = state.ledger.start()
        except BaseException:
            state.limiter.release()
            raise

    def finish(self) -> float:
        with self._lock:
            if not self._done:
                self._done = True
                self.share.stop()
                self._state.limiter.release()
        return self.share.seconds
