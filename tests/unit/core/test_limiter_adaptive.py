"""The endpoint limiter adapts its in-flight bound to 429s: halve on overload, grow back by one per window of
successes, between 1 and the configured 'Max parallelism'. Event-driven, so no clock and no sleeps are needed."""

import json
import logging
import threading

import responses

from spcs_llm.core.limiter import EndpointLimiter
from spcs_llm.core.transport import Transport, endpoint_state
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingClient

ENDPOINT = "https://storm-org-acct.snowflakecomputing.app"


def overload(limiter: EndpointLimiter) -> None:
    """A 429 to a request sent under the current bound."""
    generation = limiter.acquire()
    limiter.release()
    limiter.record_overloaded(generation)


def test_bound_halves_on_429_down_to_one():
    limiter = EndpointLimiter(8)
    seen = []
    for _ in range(5):
        overload(limiter)
        seen.append(limiter.limit)
    assert seen == [4, 2, 1, 1, 1]
    assert limiter.ceiling == 8


def test_429s_to_requests_sent_before_the_decrease_halve_only_once():
    limiter = EndpointLimiter(8)
    generations = [limiter.acquire() for _ in range(8)]
    for generation in generations:
        limiter.record_overloaded(generation)
        limiter.release()
    assert limiter.limit == 4


def test_bound_grows_back_by_one_per_window_of_successes_up_to_the_configured_max():
    limiter = EndpointLimiter(4)
    overload(limiter)
    overload(limiter)
    assert limiter.limit == 1
    history = []
    for _ in range(12):
        limiter.record_success()
        history.append(limiter.limit)
    # a window is as many successes as the bound: 1 success → 2, 2 more → 3, 3 more → 4, then it stays at the max
    assert history == [2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4]


def test_reconfiguring_keeps_a_back_off_and_caps_it_at_the_new_max():
    limiter = EndpointLimiter(8)
    limiter.resize(6)
    assert limiter.limit == 6  # not backed off: follows the configuration
    overload(limiter)
    limiter.resize(16)
    assert (limiter.limit, limiter.ceiling) == (3, 16)
    limiter.resize(2)
    assert (limiter.limit, limiter.ceiling) == (2, 2)


def test_concurrent_acquirers_never_exceed_the_current_bound():
    limiter = EndpointLimiter(4)
    overload(limiter)
    assert limiter.limit == 2
    watch = threading.Condition()
    holders = {"now": 0, "peak": 0, "done": 0}
    go = threading.Event()

    def worker():
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


def test_bound_changes_are_logged_at_debug_without_secrets(caplog):
    limiter = EndpointLimiter(4, name="https://storm-org-acct.snowflakecomputing.app")
    with caplog.at_level(logging.DEBUG, logger="spcs_llm.core.limiter"):
        overload(limiter)
        limiter.record_success()
        limiter.record_success()
    messages = [record.getMessage() for record in caplog.records]
    assert any("4 -> 2" in m for m in messages) and any("grows to 3" in m for m in messages)


@responses.activate
def test_a_429_storm_lowers_the_bound_and_loses_no_row(fake_time):
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
