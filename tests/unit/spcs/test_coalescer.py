"""Cross-call coalescing: concurrent embed calls share requests, yet each gets its own rows, errors and cost.

Callers join one gather window deterministically: the window is long and closes as soon as every caller's rows
wait (``full_rows`` = all of them), so no test depends on timing.
"""

import json
import threading
from dataclasses import dataclass

import pytest
import responses

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.spcs.coalescer import Coalescer, _Demand
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingClient

ENDPOINT = "https://coalesce-org-acct.snowflakecomputing.app"


def make_client(**overrides):
    config = {
        "auth_type": "service", "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-coalescing"},
        "endpoint": ENDPOINT, "rows_per_request": 4, "max_attempts": 1, "max_retry_seconds": 1, **overrides,
    }
    return EmbeddingClient(parse_embedding_config(config))


def vector_for(text):
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


def sent_texts(request):
    return [record["sentence"] for record in json.loads(request.body)["dataframe_records"]]


def encode_service(request):
    texts = sent_texts(request)
    return 200, {}, json.dumps({"data": [[i, {"output": vector_for(text)}] for i, text in enumerate(texts)]})


def join_every_caller(coalescer, callers):
    """Close the window only once all callers' rows wait (the condition is notified at every arrival)."""
    coalescer.window_seconds = 3600.0
    coalescer.full_rows = sum(len(texts) for texts in callers)
    coalescer._wait = lambda condition, timeout: condition.wait()
    coalescer._free_slots = lambda: 0  # a saturated endpoint: the only state in which callers gather


def run_concurrently(call, inputs):
    results, errors = [None] * len(inputs), [None] * len(inputs)

    def run(slot):
        try:
            results[slot] = call(inputs[slot])
        except Exception as failed:  # noqa: BLE001 - any error the coalescer hands back is what the test inspects
            errors[slot] = failed

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@responses.activate
def test_concurrent_callers_share_requests_and_each_gets_its_own_rows_in_order():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    client = make_client()
    callers = [[f"alpha {i}" for i in range(3)], [f"beta {i}" for i in range(5)], ["gamma 0", "gamma 1"]]
    join_every_caller(client.coalescer, callers)
    results, errors = run_concurrently(client.embed, callers)
    assert errors == [None, None, None]
    for texts, result in zip(callers, results):
        assert [row.vector for row in result.rows] == [vector_for(t) for t in texts]
    assert len(responses.calls) == 3  # 10 rows in requests of 4, where separate calls would have sent 4 requests
    assert any(len({text.split()[0] for text in sent_texts(c.request)}) > 1 for c in responses.calls)


@responses.activate
def test_a_failing_row_error_reaches_only_its_caller_with_its_own_row_number():
    def service(request):
        if "poison" in sent_texts(request):
            return 400, {}, json.dumps({"error": "Prediction failed: cannot embed poison"})
        return encode_service(request)

    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=service)
    client = make_client()
    callers = [["ok a", "ok b"], ["ok c", "poison", "ok d"], ["ok e"]]
    join_every_caller(client.coalescer, callers)
    results, errors = run_concurrently(client.embed, callers)
    assert errors == [None, None, None]
    poisoned = results[1].rows[1]
    assert poisoned.vector is None and "Text #1:" in poisoned.error and "poison" in poisoned.error
    for texts, result in zip(callers, results):
        for text, row in zip(texts, result.rows):
            if text != "poison":
                assert row.vector == vector_for(text) and row.error is None


@responses.activate
def test_shared_rows_are_spread_over_the_in_flight_bound_in_requests_of_at_least_8_rows():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    client = make_client(rows_per_request=64, max_parallelism=4)
    callers = [[f"caller {i}"] for i in range(16)] + [[f"wide {i}" for i in range(8)] for _ in range(2)]
    join_every_caller(client.coalescer, callers)
    results, errors = run_concurrently(client.embed, callers)
    assert errors == [None] * len(callers)
    for texts, result in zip(callers, results):
        assert [row.vector for row in result.rows] == [vector_for(t) for t in texts]
    # 32 rows of 18 callers over the bound of 4: four requests of 8, not one of 32 nor eighteen small ones
    assert sorted(len(sent_texts(c.request)) for c in responses.calls) == [8, 8, 8, 8]


@dataclass
class FakeCall:
    busy_seconds: float
    attempts: int = 1


def fixed_batches_of(size):
    return lambda texts, callers: [list(range(start, min(start + size, len(texts))))
                                   for start in range(0, len(texts), size)]


def test_a_failed_request_fails_only_the_callers_with_rows_in_it():
    in_flight = threading.Barrier(3, timeout=10)  # all three requests are out before the doomed one fails

    def send(batch):
        in_flight.wait()
        if any(text == "doomed" for _, text in batch):
            raise RuntimeError("request failed")
        return [f"row {label}: {text}" for label, text in batch], [FakeCall(1.0)]

    callers = [["doomed", "a1"], ["b1", "b2"], ["c1", "c2"]]
    coalescer = Coalescer(window_seconds=0.005, full_rows=4, max_workers=8, plan=fixed_batches_of(2), send=send)
    join_every_caller(coalescer, callers)
    results, errors = run_concurrently(lambda texts: coalescer.submit(list(range(len(texts))), texts), callers)
    assert isinstance(errors[0], RuntimeError) and results[0] is None
    assert errors[1:] == [None, None]
    assert results[1].rows == ["row 0: b1", "row 1: b2"] and results[2].rows == ["row 0: c1", "row 1: c2"]


def test_a_caller_is_released_when_its_own_batches_are_done_not_the_whole_dispatch():
    events = []
    fast_caller_returned = threading.Event()

    def send(batch):
        if any(text == "slow" for _, text in batch):
            fast_caller_returned.wait(timeout=30)  # a safety net only: the order below is what is asserted
            events.append("slow batch done")
        return [text for _, text in batch], [FakeCall(1.0)]

    def call(texts):
        result = coalescer.submit(list(range(len(texts))), texts)
        if texts == ["fast 1", "fast 2"]:
            events.append("fast caller returned")
            fast_caller_returned.set()
        return result

    coalescer = Coalescer(window_seconds=0.005, full_rows=4, max_workers=2, plan=fixed_batches_of(2), send=send)
    callers = [["fast 1", "fast 2"], ["slow", "other"]]
    join_every_caller(coalescer, callers)
    results, errors = run_concurrently(call, callers)
    assert errors == [None, None] and results[1].rows == ["slow", "other"]
    assert events == ["fast caller returned", "slow batch done"]


def test_each_caller_pays_its_share_of_every_request_and_the_shares_add_up():
    calls = []

    def send(batch):
        call = FakeCall(busy_seconds=2.0)
        calls.append(call)
        return [text.upper() for _, text in batch], [call]

    callers = [["a1", "a2", "a3"], ["b1"], ["c1", "c2", "c3", "c4"]]  # batches of 4: a1 a2 a3 b1 | c1 c2 c3 c4
    coalescer = Coalescer(window_seconds=0.005, full_rows=8, max_workers=2, plan=fixed_batches_of(4), send=send)
    join_every_caller(coalescer, callers)
    results, errors = run_concurrently(lambda texts: coalescer.submit(list(range(len(texts))), texts), callers)
    assert errors == [None, None, None]
    paid = [sum(shared.share * shared.call.busy_seconds for shared in result.calls) for result in results]
    assert paid == [1.5, 0.5, 2.0]
    assert sum(paid) == pytest.approx(sum(call.busy_seconds for call in calls))
    assert [row for result in results for row in result.rows] == ["A1", "A2", "A3", "B1", "C1", "C2", "C3", "C4"]


@responses.activate
def test_client_cost_is_the_callers_share_of_the_request():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    client = make_client()
    callers = [["one", "two", "three"], ["four"]]
    join_every_caller(client.coalescer, callers)
    results, errors = run_concurrently(client.embed, callers)
    assert errors == [None, None] and len(responses.calls) == 1
    first, second = results
    assert first.busy_seconds == pytest.approx(3 * second.busy_seconds)
    assert first.requests == second.requests == 1


class SteppingClock:
    """A clock that moves only when the coalescer waits, by the time it asked to wait."""

    def __init__(self):
        self.now = 0.0
        self.waits = []

    def wait(self, condition, timeout):
        self.waits.append(timeout)
        self.now += timeout


def echo(batch):
    return [text for _, text in batch], [FakeCall(1.0)]


def test_with_fewer_free_slots_than_waiting_callers_the_leader_waits_no_longer_than_the_window():
    clock = SteppingClock()
    coalescer = Coalescer(window_seconds=0.005, full_rows=64, max_workers=4, plan=fixed_batches_of(64), send=echo,
                          free_slots=lambda: 1, clock=lambda: clock.now, wait=clock.wait)
    earlier = _Demand(labels=[7], texts=["earlier"])  # a caller already waiting: two callers, one free slot
    coalescer._pending, coalescer._pending_rows = [earlier], 1
    assert coalescer.submit([0], ["alone"]).rows == ["alone"]
    assert sum(clock.waits) == pytest.approx(0.005)
    assert earlier.done.is_set() and earlier.rows == ["earlier"]


def test_a_caller_with_a_free_slot_is_sent_at_once():
    clock = SteppingClock()
    coalescer = Coalescer(window_seconds=0.005, full_rows=64, max_workers=4, plan=fixed_batches_of(64), send=echo,
                          free_slots=lambda: 1, clock=lambda: clock.now, wait=clock.wait)
    assert coalescer.submit([0], ["alone"]).rows == ["alone"]
    assert clock.waits == []


def test_a_caller_gathers_while_no_slot_is_free_and_goes_when_one_frees():
    clock = SteppingClock()
    coalescer = Coalescer(window_seconds=0.005, full_rows=64, max_workers=4, plan=fixed_batches_of(64), send=echo,
                          free_slots=lambda: 0 if clock.now < 0.002 else 1, clock=lambda: clock.now, wait=clock.wait)
    assert coalescer.submit([0], ["alone"]).rows == ["alone"]
    assert sum(clock.waits) == pytest.approx(0.002)


def test_batches_handed_to_the_senders_but_not_yet_sending_count_against_the_free_slots():
    clock = SteppingClock()
    coalescer = Coalescer(window_seconds=0.005, full_rows=64, max_workers=4, plan=fixed_batches_of(64), send=echo,
                          free_slots=lambda: 1 if clock.now < 0.002 else 2, clock=lambda: clock.now, wait=clock.wait)
    coalescer._unstarted = 1  # an earlier leader's batch, about to take the one free slot
    assert coalescer.submit([0], ["alone"]).rows == ["alone"]
    assert sum(clock.waits) == pytest.approx(0.002)
    assert coalescer._unstarted == 1  # its own batch has started and counted itself off


def test_the_client_gathers_only_when_its_endpoints_limiter_has_no_slot_free():
    client = make_client(max_parallelism=2)
    limiter = client.transport.state.limiter
    assert client.coalescer._free_slots() == 2
    limiter.acquire()
    assert client.coalescer._free_slots() == 1
    limiter.acquire()
    assert client.coalescer._free_slots() == 0
    limiter.release()
    limiter.release()


def test_a_caller_with_a_full_request_of_rows_does_not_wait_at_all():
    clock = SteppingClock()
    coalescer = Coalescer(window_seconds=0.005, full_rows=4, max_workers=4, plan=fixed_batches_of(4), send=echo,
                          clock=lambda: clock.now, wait=clock.wait)
    texts = [f"t{i}" for i in range(10)]
    assert coalescer.submit(list(range(10)), texts).rows == texts
    assert clock.waits == []


@responses.activate
def test_a_zero_window_disables_coalescing():
    responses.add_callback(responses.POST, f"{ENDPOINT}/encode", callback=encode_service)
    client = make_client(coalesce_window_ms=0)
    assert client.coalescer is None
    callers = [["one"], ["two"], ["three"]]
    results, errors = run_concurrently(client.embed, callers)
    assert errors == [None, None, None] and len(responses.calls) == 3
    assert [result.rows[0].vector for result in results] == [vector_for(t[0]) for t in callers]


@pytest.mark.parametrize("window", [-1, 51])
def test_a_window_outside_0_to_50_ms_is_a_configuration_error(window):
    with pytest.raises(ConfigurationError, match="coalesce_window_ms"):
        make_client(coalesce_window_ms=window)
