"""The per-endpoint parallelism limit, shared by every thread of the process.

DSS may run many component instances and threads against one endpoint; a model service with few workers
answers 429 or queues when overloaded, so all of them together must stay under the configured limit.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from .errors import ConfigurationError


class EndpointLimiter:
    """A resizable counting semaphore built on a Condition: at most ``limit`` holders at a time."""

    def __init__(self, limit: int):
        self._condition = threading.Condition()
        self._limit = self._checked(limit)
        self._in_use = 0

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
    def in_use(self) -> int:
        with self._condition:
            return self._in_use

    def resize(self, limit: int) -> None:
        """Change the limit; holders above a lowered limit finish normally, new ones wait until under it."""
        with self._condition:
            self._limit = self._checked(limit)
            self._condition.notify_all()

    def acquire(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._in_use < self._limit)
            self._in_use += 1

    def release(self) -> None:
        with self._condition:
            if self._in_use <= 0:
                raise RuntimeError("EndpointLimiter.release() called more times than acquire().")
            self._in_use -= 1
            self._condition.notify()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
