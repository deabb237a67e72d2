"""Cross-call coalescing: rows of concurrent callers share requests to one endpoint.

DSS decides how many texts each ``process`` call carries and how many threads call at once; a knowledge-bank
update that sends a few texts per call from many threads would pay one small request per call. Here the first
caller to arrive opens a short gather window, other callers add their rows to it, and the window closes early
once a full request's worth of rows waits. That caller (the leader) plans and sends the shared batches; every
caller gets back exactly its own rows, in its own order, with its own errors, and a share of each request it took
part in (its rows in the batch / the batch's rows, so the shares of one request add up to its cost). A failed
request fails only the rows it carried; an error that concerns the whole endpoint (the sender raises only those:
credentials, a service that never resumes) also stops the batches not yet sent, and reaches the callers whose
rows they held, as it does for a lone call.

The planner is told how many callers share the rows, so that it can spread them over several requests (one full
request would keep only one of a slow model's workers busy).

Gathering is worth its wait only while the endpoint is saturated (``free_slots()``, the limiter's say):

- a slot free for every waiting caller: the leader sends at once; each of their rows could go out now, and for
  synchronous callers a shared request would only add the window to every text's round trip
  (bench/results/coalesce.md: 5 ms of a 64 ms cycle);
- some slots free, fewer than the waiting callers: it gathers for at most the window, as before;
- no slot free: it gathers until one frees (or a full request's worth of rows waits). The rows would wait for that
  slot anyway; waiting here rather than in the limiter's queue lets them go out in one request instead of one
  each (bench/results/coalesce.md, `gpu-request`: with the window alone, one-text callers answered 15 ms apart by
  a one-worker service still sent one row per request, queued at the limiter).

A caller whose own rows fill a request never waits; a window of 0 disables coalescing (the client then sends each
call's batches itself).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from spcs_llm.core.errors import SpcsLlmError

Row = TypeVar("Row")
Call = TypeVar("Call")
# (the caller's own row number, text) pairs → one result per pair, in order, and the requests that produced them
BatchSender = Callable[[list[tuple[int, str]]], tuple[list[Row], list[Call]]]
BatchPlanner = Callable[[Sequence[str], int], list[list[int]]]  # (texts, callers) → batches of positions into texts
ConditionWait = Callable[[threading.Condition, float], object]
SLOT_POLL_SECONDS = 0.001  # while gathering, how often the leader looks whether a slot has come free


@dataclass(frozen=True)
class SharedCall(Generic[Call]):
    """One request a caller took part in, and the fraction of its cost that is this caller's."""

    call: Call
    share: float


@dataclass
class Coalesced(Generic[Row, Call]):
    rows: list[Row]
    calls: list[SharedCall[Call]]


@dataclass(eq=False)
class _Demand(Generic[Row, Call]):
    """One caller's rows waiting for their results (compared by identity: one caller, one demand)."""

    labels: list[int]
    texts: list[str]
    rows: list[Row | None] = field(default_factory=list)
    calls: list[SharedCall[Call]] = field(default_factory=list)
    error: BaseException | None = None
    outstanding: int = 0  # batches holding its rows that are not done yet
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.rows = [None] * len(self.texts)


class Coalescer(Generic[Row, Call]):
    """Thread-safe; one per embedding client. ``clock`` and ``wait`` are injectable so tests never sleep."""

    def __init__(self, *, window_seconds: float, full_rows: int, max_workers: int, plan: BatchPlanner,
                 send: BatchSender, free_slots: Callable[[], int] = lambda: 1,
                 clock: Callable[[], float] = time.monotonic, wait: ConditionWait = threading.Condition.wait):
        self.window_seconds = max(0.0, window_seconds)
        self.full_rows = max(1, full_rows)
        self._pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="spcs-embed")
        self._plan = plan
        self._send = send
        self._free_slots = free_slots  # requests the endpoint would send now without waiting (the limiter's say)
        self._clock = clock
        self._wait = wait
        self._condition = threading.Condition()
        self._pending: list[_Demand[Row, Call]] = []
        self._pending_rows = 0
        self._gathering = False
        self._results_lock = threading.Lock()
        # Batches handed to the pool that have not started sending: they will take slots the limiter still counts
        # as free, so the leader counts them against ``free_slots()`` (else every caller arriving in a burst would
        # see a free slot and go alone).
        self._unstarted = 0

    def submit(self, labels: list[int], texts: list[str]) -> Coalesced[Row, Call]:
        """Embed ``texts`` (``labels`` name them in row errors) in requests shared with concurrent callers."""
        demand: _Demand[Row, Call] = _Demand(labels=list(labels), texts=list(texts))
        with self._condition:
            self._pending.append(demand)
            self._pending_rows += len(demand.texts)
            leading = not self._gathering
            self._gathering = True
            self._condition.notify_all()
        if leading:
            self._dispatch(self._gather())
        demand.done.wait()
        if demand.error is not None:
            raise demand.error
        if any(row is None for row in demand.rows):
            raise SpcsLlmError("Internal error: a coalesced row got neither a result nor an error.")
        return Coalesced(rows=list(demand.rows), calls=demand.calls)  # type: ignore[arg-type]

    def _gather(self) -> list[_Demand[Row, Call]]:
        """Take every waiting demand: at once while a slot is free for each of them, after at most the window while
        some slot is free, and once one frees while none is (module docstring); at once when a full request's worth
        of rows waits."""
        with self._condition:
            deadline = self._clock() + self.window_seconds
            while self._pending_rows < self.full_rows:
                free = self._free_slots() - self._unstarted
                if free >= len(self._pending):
                    break
                left = deadline - self._clock()
                if free > 0 and left <= 0:
                    break
                self._wait(self._condition, min(left, SLOT_POLL_SECONDS) if free > 0 else SLOT_POLL_SECONDS)
            demands, self._pending, self._pending_rows, self._gathering = self._pending, [], 0, False
        return demands

    def _dispatch(self, demands: list[_Demand[Row, Call]]) -> None:
        """Submit the shared batches to the coalescer's sender pool; the leader then waits like any caller."""
        try:
            entries = [(demand, position) for demand in demands for position in range(len(demand.texts))]
            planned = self._plan([demand.texts[position] for demand, position in entries], len(demands))
            batches = [[entries[i] for i in batch] for batch in planned]
            for batch in batches:
                for demand in _demands_of(batch):
                    demand.outstanding += 1
            for demand in demands:
                if demand.outstanding == 0:
                    demand.done.set()
            siblings: list[tuple[Future[None], Batch]] = []
            submitting = threading.Lock()  # a failing batch cancels its siblings only once all are submitted
            with submitting:
                for batch in batches:
                    self._count_unstarted(1)
                    try:
                        siblings.append((self._pool.submit(self._send_shared, batch, siblings, submitting), batch))
                    except BaseException:
                        self._count_unstarted(-1)
                        raise
        except BaseException as failed:  # noqa: BLE001 - whatever went wrong, no caller may wait forever
            for demand in demands:
                demand.error = demand.error or failed
                demand.done.set()

    def _send_shared(self, batch: Batch, siblings: list[tuple[Future[None], Batch]], submitting: threading.Lock
                     ) -> None:
        """Send one batch; its results, or its failure, reach only the callers with rows in it.

        A caller is released as soon as all of its own batches are done, not when the whole dispatch is.
        """
        self._count_unstarted(-1)
        try:
            rows, calls = self._send([(demand.labels[position], demand.texts[position]) for demand, position in batch])
        except Exception as failed:  # noqa: BLE001 - handed to the callers it concerns, raised in their threads
            self._fail(_demands_of(batch), failed)
            with submitting:  # (the dispatch may still be submitting: its later batches must be seen too)
                pending = list(siblings)
            for future, other in pending:  # an endpoint-wide error: the batches not yet sent would fail alike
                if future.cancel():
                    self._count_unstarted(-1)
                    self._fail(_demands_of(other), failed)
                    self._finish(other)
            self._finish(batch)
            return
        for (demand, position), row in zip(batch, rows):
            demand.rows[position] = row
        with self._results_lock:
            for demand, count in Counter(demand for demand, _ in batch).items():
                demand.calls.extend(SharedCall(call=call, share=count / len(batch)) for call in calls)
        self._finish(batch)

    def _count_unstarted(self, change: int) -> None:
        with self._results_lock:
            self._unstarted += change

    def _finish(self, batch: Batch) -> None:
        with self._results_lock:
            for demand in _demands_of(batch):
                demand.outstanding -= 1
                if demand.outstanding == 0:
                    demand.done.set()

    def _fail(self, demands: set[_Demand[Row, Call]], failure: BaseException) -> None:
        with self._results_lock:
            for demand in demands:
                demand.error = demand.error or failure


Batch = list[tuple[_Demand[Any, Any], int]]  # (caller's demand, position in its rows) per row of one request


def _demands_of(batch: Batch) -> set[_Demand[Any, Any]]:
    return {demand for demand, _ in batch}
