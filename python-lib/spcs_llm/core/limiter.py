"""The per-endpoint in-flight limit, shared by every thread of the process, that finds the service's capacity.

DSS may run many component instances and threads against one endpoint; a model service with few workers
answers 429 or queues when overloaded. The configured 'Max parallelism' is only a ceiling: the bound in force is
learnt from the service's answers, as TCP Vegas and Netflix's concurrency-limits (VegasLimit, Gradient2Limit) do:

- **Latency says when requests queue.** Once per window (as many answers as the bound, about one round trip) the
  window's median latency ``rtt`` is compared with the lowest recent one ``base`` (the no-queue latency): the
  requests queued at the service are estimated as ``queue = bound × (1 − base / rtt)`` (Brakmo & Peterson, "TCP
  Vegas: End to End Congestion Avoidance on a Global Internet", IEEE JSAC 13(8), 1995; VegasLimit.java). Below
  ``alpha`` the bound grows, above ``beta`` it shrinks, in between it holds (alpha = 3·log10, beta = 6·log10 of
  the bound, at least 3 and 6: VegasLimit's defaults). A bound that was never reached in the window holds
  (Gradient2's "app limited" rule: no evidence that more in flight would help).
- **Growth is fast until the first sign of congestion, then gentle.** The bound doubles per window (TCP slow
  start, RFC 5681) until a window shows queueing or a 429 arrives; afterwards it grows by log10(bound), at least
  1, per window (VegasLimit's increase).
- **A refusal backs off gently.** A 429 (or a 503 from a warm service) to a request sent under the current bound
  sets the bound to 0.9 × the requests then in flight (AIMDLimit's default backoff ratio; halving, as TCP Reno,
  left workers idle after each refusal: bench/results/storm.md), once per change of the bound: answers to requests
  sent before it say nothing new. A Retry-After pauses every new request to the endpoint until it has passed.
- **The base forgets.** ``base`` is the minimum over the last ``BASE_WINDOWS`` windows' medians, so a service
  that became slower for good (larger requests, another model) is not read as a queue forever (VegasLimit probes
  its rtt_noload again for the same reason).

The bound starts at ``min(ceiling, INITIAL_LIMIT)`` and stays within [1, ceiling]. Every change is logged at DEBUG
with its reason.

Slots are handed out in arrival order: a thread that has just released its slot and asks again queues behind the
threads already waiting, so no call waits many service times while others never queue (without it, a chat fleet
bench saw p95 latencies of 5-7 s against a p50 of 0.3-0.5 s).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger

log = get_logger(__name__)

INITIAL_LIMIT = 8  # the first bound when the ceiling is higher: a few requests, then slow start finds the rest
BACKOFF_RATIO = 0.9  # AIMDLimit's default: gentle, since the bound is set from what was really in flight
MIN_WINDOW = 4  # answers per latency window at the least, so a bound of 1 or 2 is not judged on one sample
BASE_WINDOWS = 10  # windows the no-queue latency is remembered for (VegasLimit probes every 30 × limit samples)
MAX_PAUSE_SECONDS = 30.0  # a longer Retry-After holds the other threads back only this long (RetrySettings' cap)
PAUSE_POLL_SECONDS = 0.05  # how often a paused waiter looks at the clock (the clock may be a test's)


def _log10(bound: float) -> float:
    return max(1.0, math.log10(max(bound, 1.0)))


class EndpointLimiter:
    """A resizable, first-come-first-served counting semaphore whose size adapts to the service (module docstring).

    ``ceiling`` is the configured 'Max parallelism'; ``limit`` is the adaptive bound (1 ≤ limit ≤ ceiling).
    """

    def __init__(self, limit: int, *, name: str = "endpoint", clock: Callable[[], float] = time.monotonic):
        self._lock = threading.RLock()  # guards everything (re-entrant: a test holds it across release and acquire)
        self._condition = threading.Condition(self._lock)
        self._ceiling = self._checked(limit)
        self._estimate = float(min(self._ceiling, INITIAL_LIMIT))
        self._limit = int(self._estimate)
        self._in_use = 0
        # One condition per waiting thread, in arrival order, all on the same lock: a release wakes only the first in
        # line (which wakes the next if it fits too), not every waiter: with 30 waiters a notify_all cost 30 context
        # switches and GIL hand-overs per answer (bench/results/storm.md).
        self._waiting: deque[threading.Condition] = deque()
        self._generation = 0  # bumped by every change of the bound; older answers are old news
        self._samples: list[float] = []  # latencies of this generation's successes
        self._peak = 0  # most requests in flight during this window
        self._medians: deque[float] = deque(maxlen=BASE_WINDOWS)
        self._slow_start = True
        self._learnt = False  # whether the service has said anything yet (a 429 or a full window)
        self._paused_until = 0.0
        # Threads whose next request skips a pause: a refused one waits its own Retry-After in the retry policy,
        # a renewing one resends at once. Thread-local, so an exemption dies with its thread (idents are reused).
        self._skip_pause = threading.local()
        self._clock = clock
        self._name = name

    @staticmethod
    def _checked(limit: int) -> int:
        if int(limit) < 1:
            raise ConfigurationError(f"'Max parallelism' must be at least 1, got {limit}.")
        return int(limit)

    @property
    def limit(self) -> int:
        with self._condition:
            return self._limit

    @property
    def ceiling(self) -> int:
        with self._condition:
            return self._ceiling

    @property
    def in_use(self) -> int:
        with self._condition:
            return self._in_use

    @property
    def waiting(self) -> int:
        with self._condition:
            return len(self._waiting)

    @property
    def free(self) -> int:
        """Requests that would be sent now without waiting: slots free under the bound, less the threads already
        waiting for one; 0 during a Retry-After pause."""
        with self._condition:
            if self._paused_until > self._clock():
                return 0
            return max(0, self._limit - self._in_use - len(self._waiting))

    @property
    def base_latency(self) -> float | None:
        """The no-queue latency the bound is judged against (None before the first window)."""
        with self._condition:
            return min(self._medians) if self._medians else None

    def paused_for(self) -> float:
        """Seconds left of a Retry-After pause (0 when none)."""
        with self._condition:
            return max(0.0, self._paused_until - self._clock())

    def resize(self, limit: int) -> None:
        """Change the ceiling. Before the service has said anything the bound starts again from it; afterwards
        what was learnt stays (capped at the new ceiling): a new configuration does not undo what the service said.
        """
        with self._condition:
            self._ceiling = self._checked(limit)
            if self._learnt:
                self._set_estimate(min(self._estimate, float(self._ceiling)), "new 'Max parallelism'")
            else:
                self._set_estimate(float(min(self._ceiling, max(INITIAL_LIMIT, self._limit))), "configured")
            self._wake_first()

    def skip_pause_once(self) -> None:
        """Let this thread's next request skip a Retry-After pause (it still waits for a slot): it resends a request
        whose credential was just renewed, and a short-lived session token could be stale after the pause."""
        with self._condition:
            self._skip_pause.once = True

    def acquire(self) -> int:
        """Wait for a slot, in arrival order; returns the generation to hand back with the request's answer."""
        with self._condition:
            ticket = threading.Condition(self._lock)
            self._waiting.append(ticket)
            exempt = getattr(self._skip_pause, "once", False)
            self._skip_pause.once = False
            try:
                while True:
                    if self._waiting[0] is ticket and self._in_use < self._limit:
                        pause = 0.0 if exempt else self._paused_until - self._clock()
                        if pause <= 0:
                            break
                        ticket.wait(min(pause, PAUSE_POLL_SECONDS))
                    else:
                        ticket.wait()
            finally:
                self._waiting.remove(ticket)
                self._wake_first()  # the next in line may fit too (or take over if this one gave up)
            self._in_use += 1
            self._peak = max(self._peak, self._in_use)
            return self._generation

    def release(self) -> None:
        with self._condition:
            if self._in_use <= 0:
                raise RuntimeError("EndpointLimiter.release() called more times than acquire().")
            self._in_use -= 1
            self._wake_first()

    def _wake_first(self) -> None:
        """Wake the first in line, the only one that may take a slot (the caller holds the lock)."""
        if self._waiting:
            self._waiting[0].notify()

    def record_overloaded(self, generation: int, retry_after: float | None = None) -> None:
        """The service refused a request sent in ``generation`` (429, or 503 when warm): back off, pause if asked.

        Call it from the refused request's thread while it still holds its slot: the new bound is 0.9 × the requests
        in flight. A Retry-After holds back every other thread's next request; this thread's next one is not held,
        since its retry already waits the Retry-After (the retry policy, which also cuts it to the call's budget).
        """
        with self._condition:
            if retry_after is not None and retry_after > 0:
                until = self._clock() + min(retry_after, MAX_PAUSE_SECONDS)
                self._skip_pause.once = True
                if until > self._paused_until:
                    self._paused_until = until
                    log.debug("%s asked to retry after %.1f s: new requests wait until then", self._name,
                              retry_after)
            self._learnt = True
            if generation != self._generation:
                return
            self._slow_start = False
            target = max(1.0, min(self._estimate, float(self._in_use)) * BACKOFF_RATIO)
            self._set_estimate(min(target, self._estimate), "refused (overloaded)", force_new_window=True)

    def record_answer(self, generation: int, status: int, latency: float, *, warm: bool,
                      retry_after: float | None = None) -> None:
        """What the transport reports for every answer, before releasing its slot: a 2xx with its latency, or a
        refusal (429, or a 503 from a service that answered recently: overloaded, not resuming) with its Retry-After.
        Other answers (errors, a cold service's 503) say nothing about capacity."""
        if 200 <= status < 300:
            self.record_success(generation, latency)
        elif status == 429 or (status == 503 and warm):
            self.record_overloaded(generation, retry_after)

    def record_success(self, generation: int | None = None, latency: float | None = None) -> None:
        """A 2xx to a request sent in ``generation`` that took ``latency`` seconds (sending to answer).

        Answers without a latency, or to requests sent before the bound last changed, are not judged.
        """
        if generation is None or latency is None or latency < 0:
            return
        with self._condition:
            if generation != self._generation:
                return
            self._samples.append(latency)
            if len(self._samples) < max(self._limit, MIN_WINDOW):
                return
            self._judge_window()

    def _judge_window(self) -> None:
        """Vegas's once-per-round-trip decision (module docstring); the caller holds the lock."""
        rtt = statistics.median(self._samples)
        self._medians.append(rtt)
        base = min(self._medians)
        bound = self._estimate
        queue = bound * (1.0 - base / rtt) if rtt > 0 else 0.0
        alpha, beta = 3 * _log10(bound), 6 * _log10(bound)
        reached = self._peak >= self._limit
        self._learnt = True
        if queue > beta:
            self._slow_start = False
            new, reason = bound - _log10(bound), f"queueing ({queue:.1f} waiting)"
        elif queue < 1.0 and reached and self._slow_start:
            new, reason = bound * 2, "no queueing (slow start)"
        elif queue < alpha and reached:
            if queue >= 1.0:
                self._slow_start = False
            new, reason = bound + _log10(bound), f"little queueing ({queue:.1f} waiting)"
        else:
            new, reason = bound, ""
        why = f"{reason}; median latency {rtt * 1000:.0f} ms, base {base * 1000:.0f} ms"
        self._set_estimate(new, why, force_new_window=True)

    def _set_estimate(self, estimate: float, reason: str, *, force_new_window: bool = False) -> None:
        """Clamp to [1, ceiling], apply, and start a new generation when the bound moved (caller holds the lock)."""
        before = self._limit
        self._estimate = max(1.0, min(float(self._ceiling), estimate))
        self._limit = max(1, min(self._ceiling, int(self._estimate)))
        if self._limit != before or force_new_window:
            self._samples = []
            self._peak = self._in_use
        if self._limit != before:
            self._generation += 1
            log.debug("%s: in-flight bound %d -> %d (max %d): %s", self._name, before, self._limit,
                      self._ceiling, reason)
            self._wake_first()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
