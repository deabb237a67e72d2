"""The one retry policy, expressed as a tenacity ``Retrying``.

Transient answers — 429, 503, 504, connection failures and 403 right after a deploy — are retried with
exponential back-off and full jitter (a uniform wait between 0 and the exponential ceiling, so that many DSS
threads hitting a resuming service spread out), or after the server's ``Retry-After`` when it gives one.
Every wait is capped and never goes past the call's total time budget. Sleep, randomness and clock are
injectable so tests can assert the schedule without waiting.

A suspended service waking up is different: the ingress answers 503 while it resumes, then the proxy answers 502 or
refuses connections until the model has loaded (snowml ``registry_model_deployment_test_base.py``: "Proxy doesn't
wait for model loading in the inference server"). Such "cold-start" failures get their own, much longer budget,
counted from the first one; neither the attempt limit nor the ordinary time budget applies to them, and the time
they take is not charged to the ordinary budget.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from spcs_llm.core.redaction import get_logger

LOG = get_logger(__name__)


@dataclass(frozen=True)
class RetrySettings:
    """Back-off tuning; the attempt and time bounds come from the endpoint's configuration."""

    initial_backoff: float = 1.0  # ceiling of the first jittered wait, seconds
    max_backoff: float = 20.0  # ceiling of any jittered wait
    retry_after_cap: float = 30.0  # longest wait a server's Retry-After may impose
    deploy_403_window: float = 90.0  # how long 403 counts as "routing still propagating" on a never-2xx endpoint
    # Snowflake's tests retry 401 like 503 (registry_model_deployment_test_base.py retry_if_result_status_retriable,
    # back-off up to 4 s): right after a grant the ingress may still refuse. One such retry, after this wait.
    grant_401_backoff: float = 4.0


class RetryableError(Exception):
    """One attempt's transient failure. ``reason`` is short and secret-free: "429", "503", "connection"."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None,
                 detail: str = "", response_text: str = "", cold_start: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.cold_start = cold_start  # what a service does while it resumes: retried within the cold-start budget
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
    """One call's retry schedule: ``max_attempts`` and ``max_retry_seconds`` for ordinary failures, and
    ``cold_start_seconds`` from the first cold-start failure for a resuming service (0: no separate budget)."""

    def __init__(self, *, max_attempts: int, max_retry_seconds: float, settings: RetrySettings,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic, label: str = "request",
                 cold_start_seconds: float = 0.0):
        self.max_attempts = max(1, int(max_attempts))
        self.max_retry_seconds = max(0.0, float(max_retry_seconds))
        self.cold_start_seconds = max(0.0, float(cold_start_seconds))
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._label = label
        self._started = clock()
        self._ordinary_failures = 0
        self.resume_started: float | None = None  # when the first cold-start failure was seen
        self._resume_last: float | None = None  # when the resume ended (the last cold-start failure, or after it)
        self._resuming = False

    def _is_cold_start(self, failure: BaseException | None) -> bool:
        return self.cold_start_seconds > 0 and bool(getattr(failure, "cold_start", False))

    def resume_waited(self) -> float:
        """Seconds since the first cold-start failure of this call (0 when there was none)."""
        return 0.0 if self.resume_started is None else self._clock() - self.resume_started

    def remaining_seconds(self) -> float:
        resume_started, resume_last = self.resume_started, self._resume_last  # both set by the first cold start
        resume_spent = 0.0 if resume_started is None or resume_last is None else resume_last - resume_started
        return self.max_retry_seconds - (self._clock() - self._started - resume_spent)

    def remaining_cold_start_seconds(self) -> float:
        return self.cold_start_seconds - self.resume_waited()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        if retry_after is not None:
            wait = min(retry_after, self.settings.retry_after_cap)
        else:
            wait = full_jitter(state.attempt_number, self.settings, self._rng)
        left = self.remaining_cold_start_seconds() if self._is_cold_start(failure) else self.remaining_seconds()
        return max(0.0, min(wait, left))

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        failure = state.outcome.exception() if state.outcome else None
        now = self._clock()
        if self._is_cold_start(failure):
            if self.resume_started is None:
                self.resume_started = now
            self._resume_last, self._resuming = now, True
            return self.remaining_cold_start_seconds() <= 0
        if self._resuming:  # the wait after the last cold-start failure was part of the resume too
            self._resume_last, self._resuming = now, False
        self._ordinary_failures += 1
        return self._ordinary_failures >= self.max_attempts or self.remaining_seconds() <= 0

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        reason = getattr(failure, "detail", "") or getattr(failure, "reason", "error")
        if self._is_cold_start(failure):
            LOG.info(
                "%s answered %s: service resuming, waited %.0f s of the %.0f s cold-start wait; retrying in %.2f s",
                self._label, reason, self.resume_waited(), self.cold_start_seconds, state.upcoming_sleep,
            )
            return
        LOG.info(
            "%s answered %s; attempt %d/%d failed, retrying in %.2f s",
            self._label, reason, state.attempt_number, self.max_attempts, state.upcoming_sleep,
        )

    def retrying(self) -> tenacity.Retrying:
        """A tenacity ``Retrying`` that retries only ``RetryableError`` and re-raises the last one when spent."""
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableError),
            wait=self._wait,
            stop=self._stop,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
