"""Run-time state of each emulated service: fault knobs, seeded randomness, grants, cold start, resume and counters."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_standin.settings import ResumeAnswer, ResumePhase, ServiceSpec


@dataclass(frozen=True)
class FaultKnobs:
    """Faults injected on one service. Rates are probabilities per request, drawn from a seeded generator."""

    rate_429: float = 0.0
    retry_after_s: int = 1
    rate_503: float = 0.0
    rate_drop: float = 0.0
    latency_ms: float = 0.0  # added service time, inside the capacity slot (a slower model)
    network_latency_ms: float = 0.0  # a network round trip before the ingress: holds no capacity slot
    token_expiry_s: float = 0.0  # session and exchanged tokens older than this are refused as expired
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_503", "rate_drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigurationError(f"Fault knob {name} must be a probability.", fix="Use a value in [0, 1].")
        if min(self.retry_after_s, self.latency_ms, self.network_latency_ms, self.token_expiry_s) < 0:
            raise ConfigurationError("Fault knobs cannot be negative.", fix="Use 0 to switch a knob off.")

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


@dataclass
class ServiceStats:
    """Counters a test or benchmark reads back through ``LocalStack.stats``."""

    requests: int = 0
    rows: int = 0
    model_calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    max_rows_per_call: int = 0
    dropped: int = 0
    refused: int = 0  # connections reset during a "refuse" resume phase
    statuses: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = {str(code): n for code, n in sorted(self.statuses.items())}
        out["sent_429"] = self.statuses.get(429, 0)
        out["sent_503"] = self.statuses.get(503, 0)
        return out


class ServiceState:
    """Mutable state of one service, changed at run time through the admin routes."""

    def __init__(self, spec: ServiceSpec, granted_role: str, default_seed: int) -> None:
        self.spec = spec
        self.granted_roles: set[str] = {granted_role.upper()}
        self.default_seed = default_seed
        self.knobs = FaultKnobs()
        self.rng = random.Random(default_seed)
        self.stats = ServiceStats()
        self.cold_until = time.monotonic() + spec.cold_start_s
        self.resume_phases: tuple[ResumePhase, ...] = spec.resume_phases
        self.resume_started: float | None = None

    def set_faults(self, **knobs: Any) -> FaultKnobs:
        unknown = set(knobs) - FaultKnobs.names()
        if unknown:
            raise ConfigurationError(f"Unknown fault knob(s): {sorted(unknown)}.",
                                     fix=f"Use {sorted(FaultKnobs.names())}.")
        self.knobs = replace(self.knobs, **knobs)
        if "seed" in knobs:
            self.rng = random.Random(self.knobs.seed)
        return self.knobs

    def reset_faults(self) -> None:
        self.knobs = FaultKnobs()
        self.rng = random.Random(self.default_seed)
        self.cold_until = 0.0
        self.resume_phases = ()
        self.resume_started = None

    def reset_stats(self) -> None:
        """Zero the counters; requests still in flight stay counted so the capacity check stays right."""
        self.stats = ServiceStats(in_flight=self.stats.in_flight, max_in_flight=self.stats.in_flight)

    def set_cold_start(self, seconds: float) -> None:
        self.cold_until = time.monotonic() + max(0.0, seconds)

    def cold(self) -> bool:
        return time.monotonic() < self.cold_until

    def suspend(self, phases: tuple[ResumePhase, ...]) -> None:
        """Suspend the service (min_instances=0 after idling): the next contact begins a resume through ``phases``."""
        if not phases:
            raise ConfigurationError("A suspension needs at least one resume phase.",
                                     fix='Pass phases such as [{"answer": 502, "seconds": 2}].')
        self.resume_phases = phases
        self.resume_started = None

    def resume_answer(self) -> ResumeAnswer | None:
        """What the ingress answers now while resuming (None once resumed); the first contact starts the clock."""
        if not self.resume_phases:
            return None
        now = time.monotonic()
        if self.resume_started is None:
            self.resume_started = now
        elapsed = now - self.resume_started
        for phase in self.resume_phases:
            if elapsed < phase.seconds:
                return phase.answer
            elapsed -= phase.seconds
        self.resume_phases, self.resume_started = (), None
        return None

    def draw(self, rate: float) -> bool:
        """One seeded Bernoulli draw; no draw is made for a zero rate, so unrelated knobs keep their sequence."""
        return rate > 0 and self.rng.random() < rate
