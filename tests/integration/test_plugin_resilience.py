"""The plugin's components when the service is busy, cold or slow: 429 with Retry-After, 503 while starting, and
the process-wide parallelism limit, all against the stand-in's fault injection."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_standin.harness import load_component
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages


def embed(model, text: str = "resilience probe") -> dict:
    trace = SpanBuilder("test")
    answer = model.process({"queries": [{"text": text}]}, {}, trace)
    assert len(answer["responses"][0]["embedding"]) == 384
    return trace.to_dict()["children"][-1]["attributes"]


def seed_where_first_draw_hits_and_second_misses(rate: float) -> int:
    """The stand-in draws each fault from ``random.Random(seed)`` (spcs_standin.faults): pick a seed whose first
    request gets the fault and whose second does not, so the test is deterministic."""
    for seed in range(1000):
        draws = random.Random(seed)
        if draws.random() < rate <= draws.random():
            return seed
    raise AssertionError("no suitable seed")


def test_429_waits_for_retry_after_then_succeeds(clean_stack, dss_config, presets):
    seed = seed_where_first_draw_hits_and_second_misses(0.5)
    clean_stack.set_faults("embed", rate_429=0.5, retry_after_s=1, seed=seed)
    clean_stack.stats("embed", reset=True)
    model = load_component("spcs-embeddings", dss_config("embed", presets.pat(clean_stack.issue_pat())))
    started = time.monotonic()
    attributes = embed(model)
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # the Retry-After of 1 s was honoured, not a shorter jittered back-off
    assert attributes["spcs.retries"] == 1 and attributes["spcs.attempts"] == 2
    assert clean_stack.stats("embed")["statuses"] == {"200": 1, "429": 1}


def test_cold_start_503_is_retried_until_the_service_answers(clean_stack, dss_config, presets):
    clean_stack.set_cold_start("chat", 1.5)
    clean_stack.stats("chat", reset=True)
    model = load_component("spcs-chat", dss_config("chat", presets.pat(clean_stack.issue_pat())))
    exchange = CANNED_EXCHANGES[3]
    trace = SpanBuilder("test")
    started = time.monotonic()
    answer = model.process({"messages": chat_messages(exchange.question)}, {"temperature": 0}, trace)
    assert answer["text"] == exchange.answer
    assert time.monotonic() - started >= 1.4
    attributes = trace.to_dict()["children"][-1]["attributes"]
    assert set(attributes["spcs.retryReasons"].split(",")) == {"503"} and attributes["spcs.retries"] >= 1
    statuses = clean_stack.stats("chat")["statuses"]
    assert statuses["200"] == 1 and statuses["503"] == attributes["spcs.retries"]


def test_sixteen_threads_never_exceed_max_parallelism(clean_stack, dss_config, presets):
    limit = 2
    clean_stack.set_faults("embed", latency_ms=150)  # each request holds its slot a while, so threads overlap
    clean_stack.stats("embed", reset=True)
    # Coalescing off: each thread's call is its own request, so 16 requests compete for the 2 slots.
    model = load_component("spcs-embeddings", dss_config("embed", presets.pat(clean_stack.issue_pat()),
                                                         max_parallelism=limit, coalesce_window_ms=0))
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: embed(model, f"thread {i}"), range(16)))
    stats = clean_stack.stats("embed")
    assert all(result["spcs.retries"] == 0 for result in results)
    assert stats["statuses"] == {"200": 16}
    assert stats["max_in_flight"] == limit  # reached (the threads did overlap) and never exceeded


def test_sixteen_one_text_calls_share_requests_and_each_gets_its_own_vector(clean_stack, dss_config, presets):
    clean_stack.set_faults("embed", latency_ms=150)
    clean_stack.stats("embed", reset=True)
    model = load_component("spcs-embeddings", dss_config("embed", presets.pat(clean_stack.issue_pat()),
                                                         max_parallelism=2, coalesce_window_ms=20))
    texts = [f"thread {i} asks about {word}" for i, word in enumerate(["pools", "tokens", "roles", "stages"] * 4)]
    alone = {text: model.process({"queries": [{"text": text}]}, {}, SpanBuilder("test"))["responses"][0]["embedding"]
             for text in texts[:2]}
    clean_stack.stats("embed", reset=True)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = pool.map(lambda text: model.process({"queries": [{"text": text}]}, {}, SpanBuilder("test")), texts)
        vectors = [answer["responses"][0]["embedding"] for answer in answers]
    stats = clean_stack.stats("embed")
    requests = sum(stats["statuses"].values())
    assert stats["statuses"] == {"200": requests} and requests < len(texts)  # shared requests, all answered
    assert stats["max_in_flight"] <= 2
    for text in texts[:2]:  # each caller got the vector of its own text, as when it called alone
        got = vectors[texts.index(text)]
        assert max(abs(a - b) for a, b in zip(got, alone[text])) < 1e-4
