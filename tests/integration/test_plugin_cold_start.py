"""The embedding component through a real resume of the stand-in: 503 while resuming, 502 and reset connections while
the model loads, then answers; the wait is reported in the trace. The phases are seconds here; the unit tests
(tests/unit/test_transport_cold_start.py) cover minutes with a simulated clock."""

from __future__ import annotations

import time

from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_standin.harness import load_component


def test_a_resuming_embedding_service_is_waited_for_and_the_wait_is_traced(clean_stack, dss_config, presets):
    model = load_component("spcs-embeddings", dss_config("embed", presets.pat(clean_stack.issue_pat()),
                                                         max_attempts=2, max_retry_seconds=1))
    clean_stack.suspend("embed", [(503, 1.0), (502, 1.5), ("refuse", 1.0)])
    trace = SpanBuilder("test")
    started = time.monotonic()
    answer = model.process({"queries": [{"text": "wake up"}, {"text": "and embed"}]}, {}, trace)
    assert [len(r["embedding"]) for r in answer["responses"]] == [384, 384]
    assert time.monotonic() - started >= 3.0  # longer than the ordinary budget of 2 attempts / 1 s allows
    attributes = trace.to_dict()["children"][-1]["attributes"]
    assert attributes["spcs.coldStartWaitSeconds"] >= 2.5
    # Which phases a jittered back-off lands in varies; each retry was one of the resume's answers (the unit tests
    # in tests/unit/test_transport_cold_start.py pin 502, 503 and resets one by one).
    reasons = attributes["spcs.retryReasons"].split(",")
    assert reasons[0] == "503" and set(reasons) <= {"503", "502", "connection"}


def test_connections_refused_while_the_model_loads_are_waited_for(clean_stack, dss_config, presets):
    model = load_component("spcs-embeddings", dss_config("embed", presets.pat(clean_stack.issue_pat()),
                                                         max_attempts=1, max_retry_seconds=0))
    embed_once = {"queries": [{"text": "warm"}]}
    model.process(embed_once, {}, SpanBuilder("warm-up"))  # it answered once, so a refusal later is a resume
    clean_stack.suspend("embed", [("refuse", 1.5)])
    trace = SpanBuilder("test")
    answer = model.process({"queries": [{"text": "wake up"}]}, {}, trace)
    assert len(answer["responses"][0]["embedding"]) == 384
    attributes = trace.to_dict()["children"][-1]["attributes"]
    assert "connection" in attributes["spcs.retryReasons"] and attributes["spcs.coldStartWaitSeconds"] > 0


def test_a_resuming_chat_service_is_waited_for_and_the_wait_is_traced(clean_stack, dss_config, presets):
    model = load_component("spcs-chat", dss_config("chat", presets.pat(clean_stack.issue_pat()),
                                                   max_attempts=2, max_retry_seconds=1))
    clean_stack.suspend("chat", [(503, 1.0), (502, 1.5)])
    trace = SpanBuilder("test")
    answer = model.process({"messages": [{"role": "user", "content": "Hi"}]}, {"temperature": 0}, trace)
    assert answer["text"]
    attributes = trace.to_dict()["children"][-1]["attributes"]
    assert attributes["spcs.coldStartWaitSeconds"] >= 2.0
    # Which phases a back-off lands in depends on its jitter; every retry was for the resume.
    assert set(attributes["spcs.retryReasons"].split(",")) <= {"503", "502"}
