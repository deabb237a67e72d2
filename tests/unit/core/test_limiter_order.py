"""The endpoint limiter hands out slots in arrival order: a thread that releases and asks again queues behind the
threads already waiting (no barging), so waits stay bounded for every caller."""

from __future__ import annotations

import threading
import time

from spcs_llm.core.limiter import EndpointLimiter


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_a_releasing_thread_queues_behind_the_threads_already_waiting():
    limiter = EndpointLimiter(1)
    order: list[str] = []
    limiter.acquire()  # the main thread holds the only slot

    def caller(name: str) -> None:
        with limiter.slot():
            order.append(name)

    threads = []
    for number, name in enumerate(("first", "second", "third"), start=1):
        thread = threading.Thread(target=caller, args=(name,))
        thread.start()
        threads.append(thread)
        _until(lambda queued=number: limiter.waiting == queued, f"{name} to queue")
    # Release and ask again without letting go of the limiter's lock in between: the woken waiter cannot run first,
    # which is the race a busy thread wins in practice. First come, first served: main must still wait its turn.
    with limiter._condition:
        limiter.release()
        limiter.acquire()
    order.append("main again")
    limiter.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == ["first", "second", "third", "main again"]
    assert limiter.in_use == 0 and limiter.waiting == 0


def test_a_wider_limit_lets_several_queued_threads_in_at_once():
    limiter = EndpointLimiter(1)
    limiter.acquire()
    inside = threading.Barrier(3, timeout=10)  # both waiters and the main thread: they can only meet if both got in
    threads = [threading.Thread(target=lambda: (limiter.acquire(), inside.wait(), limiter.release())) for _ in range(2)]
    for number, thread in enumerate(threads, start=1):
        thread.start()
        _until(lambda queued=number: limiter.waiting == queued, "the waiters to queue")
    limiter.resize(3)  # two more slots: the first in line takes one and must let the second in too
    inside.wait()
    for thread in threads:
        thread.join(timeout=10)
    limiter.release()
    assert limiter.in_use == 0 and limiter.waiting == 0
