"""Credit-cost accounting: a request costs its share of busy time.

An SPCS service bills for the time its compute pool runs, not per request. So a request is charged its
*share* of the endpoint's busy time: between any two events (a request starting or stopping) the elapsed wall
time is divided equally among the requests then in flight. The shares of all requests add up to the busy time
exactly — unlike charging each call its own wall time, which counts overlapping time once per call. Idle pool
time is real spend too but belongs to no request; ``UsageSummary`` reports it separately.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from spcs_llm.core.config import CostConfig
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.registry import REGISTRY
from spcs_llm.core.resources import resource_path

Clock = Callable[[], float]


# The credits/hour values are those of Snowflake's Service Consumption Table on the date in the file ("as_of");
# prices change, so the model's 'Credits per hour' override wins over the table.
@lru_cache(maxsize=1)
def _rates_table() -> tuple[tuple[str, float], ...]:
    with open(resource_path("instance_families.json"), encoding="utf-8") as handle:
        families = json.load(handle)["families"]
    return tuple((name, float(spec["credits_per_hour"])) for name, spec in families.items())


def instance_family_rates() -> dict[str, float]:
    """Credits per hour of each SPCS instance family, from resource/instance_families.json (read once)."""
    return dict(_rates_table())


@dataclass(frozen=True)
class PricingRate:
    credits_per_hour: float
    dollars_per_credit: float

    def dollars(self, busy_seconds: float) -> float:
        return busy_seconds * self.credits_per_hour / 3600.0 * self.dollars_per_credit

    @classmethod
    def for_config(cls, cost: CostConfig) -> PricingRate:
        """The model's 'Credits per hour' override when set, else the instance family's table rate."""
        if cost.credits_per_hour:
            return cls(credits_per_hour=float(cost.credits_per_hour), dollars_per_credit=cost.dollars_per_credit)
        rates = instance_family_rates()
        family = (cost.instance_family or "").strip().upper()
        if family not in rates:
            raise ConfigurationError(
                f"Unknown instance family {cost.instance_family!r}; known families: {', '.join(sorted(rates))}.",
                fix="Pick one of the known instance families, or set 'Credits per hour' on the model to override "
                "the table.",
            )
        return cls(credits_per_hour=rates[family], dollars_per_credit=cost.dollars_per_credit)


class RequestShare:
    """One in-flight request's accumulated share of busy time; ``seconds`` is final once stopped."""

    def __init__(self, ledger: BusyTimeLedger):
        self._ledger = ledger
        self.seconds = 0.0
        self.stopped = False

    def stop(self) -> None:
        """End this request's tracking (idempotent)."""
        self._ledger._stop(self)


@dataclass(frozen=True)
class UsageSummary:
    """A snapshot of one endpoint's ledger. Times are readings of the ledger's monotonic clock."""

    calls: int
    busy_seconds: float
    in_flight: int
    first_activity: float | None
    last_activity: float | None

    @property
    def active_span_seconds(self) -> float:
        """Time from the first request's start to the latest event."""
        if self.first_activity is None or self.last_activity is None:
            return 0.0
        return self.last_activity - self.first_activity

    @property
    def idle_seconds(self) -> float:
        """Time within the active span with no request in flight: spend that belongs to no request."""
        return max(0.0, self.active_span_seconds - self.busy_seconds)


class BusyTimeLedger:
    """Divides one endpoint's busy time among its in-flight requests. Thread-safe."""

    def __init__(self, clock: Clock = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight: list[RequestShare] = []
        self._last_event: float | None = None
        self._first_activity: float | None = None
        self._busy_seconds = 0.0
        self._requests = 0

    def _advance(self, now: float) -> None:
        """Charge the time since the last event equally to the requests in flight during it."""
        if self._in_flight and self._last_event is not None:
            elapsed = max(0.0, now - self._last_event)
            portion = elapsed / len(self._in_flight)
            for share in self._in_flight:
                share.seconds += portion
            self._busy_seconds += elapsed
        self._last_event = now

    def start(self) -> RequestShare:
        """Begin tracking one request; call ``stop()`` on the result (or use ``track()``)."""
        share = RequestShare(self)
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._first_activity is None:
                self._first_activity = now
            self._in_flight.append(share)
            self._requests += 1
        return share

    def _stop(self, share: RequestShare) -> None:
        with self._lock:
            if share.stopped:
                return
            self._advance(self._clock())
            self._in_flight.remove(share)
            share.stopped = True

    @contextmanager
    def track(self) -> Iterator[RequestShare]:
        """Bracket one in-flight request: ``with ledger.track() as share: ...``; then read ``share.seconds``."""
        share = self.start()
        try:
            yield share
        finally:
            share.stop()

    @property
    def busy_seconds(self) -> float:
        """Time with at least one request in flight, up to the latest event."""
        with self._lock:
            return self._busy_seconds

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def summary(self) -> UsageSummary:
        with self._lock:
            return UsageSummary(
                calls=self._requests,
                busy_seconds=self._busy_seconds,
                in_flight=len(self._in_flight),
                first_activity=self._first_activity,
                last_activity=self._last_event,
            )


LEDGER = "cost.ledger"  # the endpoint's BusyTimeLedger in the process registry


def ledger_for(base_url: str, clock: Clock = time.monotonic) -> BusyTimeLedger:
    """The process-wide ledger of an endpoint (``clock`` applies only when the ledger is created here)."""
    return REGISTRY.setdefault(base_url, LEDGER, lambda: BusyTimeLedger(clock))


def reset_ledgers() -> None:
    """Forget every endpoint's ledger (tests)."""
    REGISTRY.forget(LEDGER)
