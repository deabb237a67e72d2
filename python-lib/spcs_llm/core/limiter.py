"""The per-endpoint parallelism limit, shared by every thread of the process, adapted to the service's answers.

DSS may run many component instances and threads against one endpoint; a model service with few workers
answers 429 or queues when overloaded, so all of them together must stay under the configured limit. When the
service still says it is full (429), the bound backs off (halves, never below 1) and grows back by one after each
window of successes (as many successes as the bound), up to the configured limit: additive increase,
multiplicative decrease, so the requests in flight settle near what the service can take instead of spending
the time in retry back-offs.

Slots are handed out in arrival order: a thread that has just released its slot and asks again queues behind the
threads already waiting, so no call waits many service times while others never queue (without it, a chat fleet
bench saw p95 latencies of 5-7 s against a p50 of 0.3-0.5 s).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger

log = get_logger(__name__)


class EndpointLimiter:
    """A resizable, first-come-first-served counting semaphore built on a Condition: at most ``limit`` holders.

    ``ceiling`` is the configured 'Max parallelism'; ``limit`` is the current, adaptive bound (1 ≤ limit ≤ ceiling).
    Event counts, not time, drive the adaptation, so it is deterministic under test.
    """

    def __init__(self, limit: int, *, name: str = "endpoint"):
        self._condition = threading.Condition()
        self._ceiling = self._checked(limit)
        self._limit = self._ceiling
        self._in_use = 0
        self._waiting: deque[object] = deque()  # one ticket per waiting thread, in arrival order
        self._generation = 0  # bumped by every decrease; a 429 to a request sent before it is old news
        self._successes = 0  # successes since the bound last changed
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

    def resize(self, limit: int) -> None:
        """Change the configured limit; holders above a lowered limit finish normally, new ones wait until under it.

        A bound backed off below the old limit stays backed off (and grows back towards the new one): a new
        configuration does not undo what the service said.
        """
        with self._condition:
            ceiling = self._checked(limit)
            backed_off = self._limit < self._ceiling
            self._ceiling = ceiling
            self._limit = min(self._limit, ceiling) if backed_off else ceiling
            self._condition.notify_all()

    def acquire(self) -> int:
        """Wait for a slot; returns the generation to hand back to ``record_overloaded`` if the answer is a 429."""
        with self._condition:
            ticket = object()
            self._waiting.append(ticket)
            try:
                self._condition.wait_for(lambda: self._waiting[0] is ticket and self._in_use < self._limit)
            finally:
                self._waiting.remove(ticket)
                self._condition.notify_all()  # the next in line may fit too (or take over if this one gave up)
            self._in_use += 1
            return self._generation

    def release(self) -> None:
        with self._condition:
            if self._in_use <= 0:
                raise RuntimeError("EndpointLimiter.release() called more times than acquire().")
            self._in_use -= 1
            self._condition.notify_all()  # only the first in line may take it, so every waiter must look

    def record_overloaded(self, generation: int) -> None:
        """The service answered 429 to a request sent in ``generation``: halve the bound, once per generation.

        The requests already in flight when the bound was halved were sent under the old bound; their 429s say
        nothing new, so they do not halve it again.
        """
        with self._condition:
            if generation != self._generation:
                return
            before = self._limit
            self._limit = max(1, self._limit // 2)
            self._generation += 1
            self._successes = 0
            if self._limit != before:
                log.debug("%s answered 429: in-flight bound %d -> %d (max %d)", self._name, before, self._limit,
                          self._ceiling)

    def record_success(self) -> None:
        """A 2xx: after a window of ``limit`` successes the bound grows by one, up to the configured limit."""
        with self._condition:
            if self._limit >= self._ceiling:
                return
            self._successes += 1
            if self._successes < self._limit:
                return
            self._successes = 0
            self._limit += 1
            log.debug("%s: in-flight bound grows to %d (max %d)", self._name, self._limit, self._ceiling)
            self._condition.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
