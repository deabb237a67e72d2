"""The one retry policy (design.md "One retry policy"), expressed as a tenacity ``Retrying``.

Transient answers — 429, 503, 504, connection failures and 403 right after a deploy — are retried with
exponential back-off and full jitter (a uniform wait between 0 and the exponential ceiling, so that many DSS
threads hitting a resuming service spread out), or after the server's ``Retry-After`` when it gives one.
Every wait is capped and never goes past the call's total time budget. Sleep, randomness and clock are
injectable so tests can assert the schedule without waiting.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Callable

import tenacity

from .redaction import get_logger

LOG = get_logger(__name__)


@dataclass(frozen=True)
class RetrySettings:
    """Back-off tuning; the attempt and time bounds come from the endpoint's configuration."""

    initial_backoff: float = 1.0  # ceiling of the first jittered wait, seconds
    max_backoff: float = 20.0  # ceiling of any jittered wait
    retry_after_cap: float = 30.0  # longest wait a server's Retry-After may impose
    deploy_403_window: float = 90.0  # how long 403 counts as "routing still propagating" on a never-2xx endpoint


class RetryableFailure(Exception):
    """One attempt's transient failure. ``reason`` is short and secret-free: "429", "503", "connection"."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None,
                 detail: str = "", response_text: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.detail = detail
        self.response_text = response_text


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (``now`` is time.time())."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - now)


def full_jitter(attempt_number: int, settings: RetrySettings, rng: random.Random) -> float:
    """A uniform wait in [0, min(max_backoff, initial_backoff × 2^(attempt-1))]."""
    ceiling = min(settings.max_backoff, settings.initial_backoff * (2 ** max(0, attempt_number - 1)))
    return rng.uniform(0.0, ceiling)


class RetryPolicy:
    """One call's retry schedule: bounded by ``max_attempts`` and ``max_retry_seconds`` from its start."""

    def __init__(self, *, max_attempts: int, max_retry_seconds: float, settings: RetrySettings,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic, label: str = "request"):
        self.max_attempts = max(1, int(max_attempts))
        self.max_retry_seconds = max(0.0, float(max_retry_seconds))
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._label = label
        self._started = clock()

    def remaining_seconds(self) -> float:
        return self.max_retry_seconds - (self._clock() - self._started)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        if retry_after is not None:
            wait = min(retry_after, self.settings.retry_after_cap)
        else:
            wait = full_jitter(state.attempt_number, self.settings, self._rng)
        return max(0.0, min(wait, self.remaining_seconds()))

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        return state.attempt_number >= self.max_attempts or self.remaining_seconds() <= 0

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        reason = getattr(failure, "detail", "") or getattr(failure, "reason", "error")
        LOG.info(
            "%s answered %s; attempt %d/%d failed, retrying in %.2f s",
            self._label, reason, state.attempt_number, self.max_attempts, state.upcoming_sleep,
        )

    def retrying(self) -> tenacity.Retrying:
        """A tenacity ``Retrying`` that retries only ``RetryableFailure`` and re-raises the last one when spent."""
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableFailure),
            wait=self._wait,
            stop=self._stop,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
