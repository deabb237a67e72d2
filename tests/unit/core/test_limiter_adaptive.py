"""The endpoint limiter finds the service's capacity: it grows while latency stays flat, shrinks on refusals and on
rising latency, honours Retry-After, and keeps its bound within [1, 'Max parallelism']. Driven by answers and an
injected clock: no sleeps, no timing bounds."""

from __future__ import annotations

import json
import logging
import threading

import responses

from spcs_llm.core import limiter as limiter_module
from spcs_llm.core.endpoint_state import endpoint_state
from spcs_llm.core.limiter import INITIAL_LIMIT, EndpointLimiter
from spcs_llm.core.transport import Transport
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingClient

ENDPOINT = "https://storm-org-acct.snowflakecomputing.app"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def window(limiter: EndpointLimiter, latency: float) -> None:
    """One full window at the bound: every slot taken, every answer a 2xx after ``latency`` seconds."""
    taken = [limiter.acquire() for _ in range(limiter.limit)]
    for _ in range(max(0, limiter_module.MIN_WINDOW - len(taken))):
        taken.append(taken[0])  # a bound below MIN_WINDOW needs more answers: the same slots used again
    for generation in taken:
        limiter.record_success(generation, latency)
    for _ in range(limiter.in_use):
        limiter.release()


def overload(limiter: EndpointLimiter, in_flight: int = 1, retry_after: float | None = None) -> None:
    """A 429 to a request sent under the current bound, while ``in_flight`` requests (itself included) are out."""
    generations = [limiter.acquire() for _ in range(in_flight)]
    limiter.record_overloaded(generations[-1], retry_after)
    for _ in generations:
        limiter.release()


def test_the_bound_starts_low_under_a_high_ceiling_and_at_a_low_ceiling():
    assert (EndpointLimiter(64).limit, EndpointLimiter(64).ceiling) == (INITIAL_LIMIT, 64)
    assert EndpointLimiter(3).limit == 3


def test_flat_latency_doubles_the_bound_then_stops_at_the_ceiling():
    limiter = EndpointLimiter(64)
    seen = []
    for _ in range(5):
        window(limiter, 0.070)
        seen.append(limiter.limit)
    assert seen == [16, 32, 64, 64, 64]


def test_a_bound_never_reached_does_not_grow():
    limiter = EndpointLimiter(64)
    for _ in range(5):
        generation = limiter.acquire()  # one request at a time: the callers, not the bound, limit the flow
        for _ in range(INITIAL_LIMIT):
            limiter.record_success(generation, 0.070)
        limiter.release()
    assert limiter.limit == INITIAL_LIMIT


def test_rising_latency_shrinks_the_bound_and_ends_slow_start():
    limiter = EndpointLimiter(64)
    window(limiter, 0.070)  # base 70 ms: 8 -> 16
    assert limiter.limit == 16
    window(limiter, 0.140)  # twice the base at 16 in flight: about 8 queued, above beta (6 × log10 16 = 7.2)
    assert limiter.limit == 14
    window(limiter, 0.080)  # 14 × (1 - 70/80) = 1.75 queued: below alpha, grows gently now (no more doubling)
    assert limiter.limit == 15


def test_a_429_backs_off_to_nine_tenths_of_what_was_in_flight_once_per_change():
    limiter = EndpointLimiter(32)
    generations = [limiter.acquire() for _ in range(8)]
    for generation in generations:  # eight 429s to requests sent under the same bound: one decrease
        limiter.record_overloaded(generation)
    assert limiter.limit == 7  # 0.9 × 8 in flight = 7.2
    for _ in generations:
        limiter.release()
    overload(limiter, in_flight=7)
    assert limiter.limit == 6


def test_the_bound_never_drops_below_one():
    limiter = EndpointLimiter(4)
    for _ in range(20):
        overload(limiter)
    assert limiter.limit == 1
    window(limiter, 0.5)
    assert limiter.limit >= 1


def test_a_storm_keeps_the_bound_within_one_and_the_ceiling_and_it_recovers_afterwards():
    """A simulated service: 70 ms without queueing for up to 14 in flight, slower above (Little's law), refusing
    above ``admits``. A storm (another tenant takes most of it) lasts 40 rounds; then the service is whole again."""
    ceiling = 32
    limiter = EndpointLimiter(ceiling)
    bounds = []

    def round_trip(admits: int) -> None:
        generations = [limiter.acquire() for _ in range(limiter.limit)]
        in_flight = len(generations)
        latency = 0.070 * max(1.0, in_flight / 14)
        for number, generation in enumerate(generations):
            if number >= admits:
                limiter.record_overloaded(generation)
            else:
                limiter.record_success(generation, latency)
        for _ in generations:
            limiter.release()
        bounds.append(limiter.limit)

    for _ in range(30):
        round_trip(admits=18)
    before = bounds[-10:]
    for _ in range(40):
        round_trip(admits=2)
    during = bounds[-10:]
    for _ in range(60):
        round_trip(admits=18)
    after = bounds[-10:]
    assert all(1 <= bound <= ceiling for bound in bounds)
    assert min(before) >= 14 and max(before) <= 19  # near the knee, not at the ceiling
    assert max(during) <= 3
    assert min(after) >= 14 and max(after) <= 19  # recovered


def test_retry_after_holds_back_the_other_threads_until_it_has_passed():
    clock = Clock()
    limiter = EndpointLimiter(8, clock=clock)
    overload(limiter, retry_after=5.0)
    assert limiter.paused_for() == 5.0
    entered = threading.Event()

    def other_caller() -> None:
        with limiter.slot():
            entered.set()

    thread = threading.Thread(target=other_caller)
    thread.start()
    assert not entered.wait(0.2)  # paused (the limiter polls its clock, which has not moved)
    assert limiter.waiting == 1
    clock.now += 5.0
    assert entered.wait(10)
    thread.join(10)
    assert limiter.paused_for() == 0.0


def test_free_slots_are_the_bound_less_what_is_in_flight_and_none_during_a_pause():
    clock = Clock()
    limiter = EndpointLimiter(4, clock=clock)
    assert limiter.free == 4
    limiter.acquire()
    assert limiter.free == 3
    limiter.release()
    overload(limiter, retry_after=2.0)
    assert limiter.free == 0
    clock.now += 2.0
    assert limiter.free == limiter.limit


def test_the_refused_thread_is_not_held_twice():
    """Its retry already waited the Retry-After in the retry policy (possibly cut to the call's budget)."""
    clock = Clock()
    limiter = EndpointLimiter(8, clock=clock)
    overload(limiter, retry_after=5.0)
    limiter.acquire()  # returns at once, in this thread, with the clock unmoved
    limiter.release()
    assert limiter.paused_for() == 5.0


def test_reconfiguring_caps_what_was_learnt_and_keeps_it():
    limiter = EndpointLimiter(8)
    limiter.resize(6)
    assert limiter.limit == 6  # nothing learnt yet: follows the configuration
    overload(limiter, in_flight=6)
    assert limiter.limit == 5
    limiter.resize(16)
    assert (limiter.limit, limiter.ceiling) == (5, 16)
    limiter.resize(2)
    assert (limiter.limit, limiter.ceiling) == (2, 2)


def test_concurrent_acquirers_never_exceed_the_current_bound():
    limiter = EndpointLimiter(4)
    overload(limiter, in_flight=3)
    assert limiter.limit == 2
    watch = threading.Condition()
    holders = {"now": 0, "peak": 0, "done": 0}
    go = threading.Event()

    def worker() -> None:
        limiter.acquire()
        with watch:
            holders["now"] += 1
            holders["peak"] = max(holders["peak"], holders["now"])
            watch.notify_all()
        go.wait()
        with watch:
            holders["now"] -= 1
            holders["done"] += 1
            watch.notify_all()
        limiter.release()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    with watch:
        watch.wait_for(lambda: holders["now"] == 2)
    assert limiter.in_use == 2  # the four others wait for a slot
    go.set()
    for thread in threads:
        thread.join()
    assert holders == {"now": 0, "peak": 2, "done": 6}
    assert limiter.in_use == 0


def test_bound_changes_are_logged_at_debug_with_their_reason(caplog):
    limiter = EndpointLimiter(32, name="https://storm-org-acct.snowflakecomputing.app")
    with caplog.at_level(logging.DEBUG, logger="spcs_llm.core.limiter"):
        window(limiter, 0.070)
        overload(limiter, in_flight=10)
    messages = [record.getMessage() for record in caplog.records]
    assert any("8 -> 16" in m and "slow start" in m and "median latency 70 ms" in m for m in messages)
    assert any("16 -> 9" in m and "refused" in m for m in messages)


@responses.activate
def test_a_429_storm_through_the_transport_lowers_the_bound_and_loses_no_row(fake_time):
    answered = {"429": 0, "ok": 0}
    lock = threading.Lock()

    def service(request):
        with lock:
            storm = answered["429"] < 6
            answered["429" if storm else "ok"] += 1
        if storm:
            return 429, {}, json.dumps({"error": "Too many requests"})
        body = json.loads(request.body)
        rows = [(row[0], row[1]) for row in body["data"]] if "data" in body else [
            (i, record["sentence"]) for i, record in enumerate(body["dataframe_records"])]
        return 200, {}, json.dumps({"data": [[i, {"output": [float(len(text)), 1.0]}] for i, text in rows]})

    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    config = parse_embedding_config({
        "auth_type": "service", "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-storm"},
        "endpoint": ENDPOINT, "rows_per_request": 2, "max_parallelism": 8, "max_attempts": 10,
        "max_retry_seconds": 600,
    })
    client = EmbeddingClient(config)
    client.transport = Transport(config.endpoint, client.transport.tokens, sleep=fake_time.sleep,
                                 clock=fake_time.clock)
    texts = [f"text {i}" for i in range(40)]
    result = client.embed(texts)
    assert [row.vector for row in result.rows] == [[float(len(t)), 1.0] for t in texts]
    assert answered["429"] == 6 and result.attempts == 20 + 6
    limiter = endpoint_state(ENDPOINT).limiter
    assert 1 <= limiter.limit < 8 and limiter.ceiling == 8


def test_answers_are_sorted_into_successes_refusals_and_neither():
    clock = Clock()
    limiter = EndpointLimiter(32, clock=clock)
    generation = limiter.acquire()
    limiter.record_answer(generation, 500, 0.1, warm=True)
    limiter.record_answer(generation, 503, 0.1, warm=False)  # a suspended service resuming: not overload
    assert limiter.limit == INITIAL_LIMIT and limiter.paused_for() == 0.0
    limiter.record_answer(generation, 503, 0.1, warm=True, retry_after=2.0)
    assert limiter.limit == 1 and limiter.paused_for() == 2.0  # 0.9 × the one request in flight
    limiter.release()
    clock.now += 2.0
    window(limiter, 0.070)
    window(limiter, 0.070)
    assert limiter.limit == 3  # after a refusal, no slow start: one more per window, gently
