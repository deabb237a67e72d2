"""Capacity, cold start and each fault-injection knob of the stand-in.

The answers are those Snowflake's registry REST tests retry (``registry_model_deployment_test_base.py``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

BODY = {"data": [[0, "a short sentence", None, None]]}  # sentence, batch_size, truncate_dim


def _encode(stack, headers, body=BODY) -> requests.Response:
    return requests.post(f"{stack.embed_url}/encode", json=body, headers=headers, timeout=30)


def test_in_flight_requests_beyond_capacity_get_429(clean_stack, pat_headers):
    clean_stack.stats("embed", reset=True)
    clean_stack.set_faults("embed", latency_ms=1500)  # each admitted request holds its slot for 1.5 s, so all 8 overlap
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: _encode(clean_stack, pat_headers), range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 3 + [429] * 5  # capacity = 1 worker + 2 queued
    assert all(r.json() == {"error": "Too many requests"} for r in responses if r.status_code == 429)
    stats = clean_stack.stats("embed")
    assert stats["max_in_flight"] == 3 and stats["sent_429"] == 5 and stats["requests"] == 8


def test_cold_start_answers_503_until_ready(clean_stack, pat_headers):
    clean_stack.set_cold_start("embed", 1.0)
    assert _encode(clean_stack, pat_headers).status_code == 503
    time.sleep(1.1)
    assert _encode(clean_stack, pat_headers).status_code == 200


def test_injected_429_carries_retry_after(clean_stack, pat_headers):
    clean_stack.set_faults("embed", rate_429=1.0, retry_after_s=7)
    response = _encode(clean_stack, pat_headers)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"


def test_injected_503(clean_stack, pat_headers):
    clean_stack.set_faults("embed", rate_503=1.0)
    assert _encode(clean_stack, pat_headers).status_code == 503


def test_dropped_connection_sends_no_response(clean_stack, pat_headers):
    clean_stack.stats("embed", reset=True)
    clean_stack.set_faults("embed", rate_drop=1.0)
    with pytest.raises(requests.ConnectionError):
        _encode(clean_stack, pat_headers)
    assert clean_stack.stats("embed")["dropped"] == 1


def test_added_latency(clean_stack, pat_headers):
    clean_stack.set_faults("embed", latency_ms=400)
    started = time.monotonic()
    assert _encode(clean_stack, pat_headers).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_forced_token_expiry_hits_session_and_exchanged_tokens_only(clean_stack, pat_headers, snowflake_auth):
    pat = clean_stack.issue_pat()
    exchanged = requests.post(f"{clean_stack.account_url}/oauth/token", timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": pat,
        "subject_token_type": "programmatic_access_token"}).text
    clean_stack.set_faults("embed", token_expiry_s=0.5)
    assert _encode(clean_stack, snowflake_auth(exchanged)).status_code == 200
    time.sleep(0.6)
    refused = _encode(clean_stack, snowflake_auth(exchanged))
    assert refused.status_code == 401 and refused.json()["code"] == "390104"
    assert _encode(clean_stack, snowflake_auth(pat)).status_code == 200


def test_fault_draws_are_seeded(clean_stack, pat_headers):
    def sequence() -> list[int]:
        clean_stack.set_faults("embed", rate_429=0.5, seed=11)
        return [_encode(clean_stack, pat_headers).status_code for _ in range(12)]

    first = sequence()
    assert first == sequence()
    assert set(first) == {200, 429}


def test_unknown_knob_is_refused(clean_stack):
    from spcs_llm.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="rate_teapot"):
        clean_stack.set_faults("embed", rate_teapot=1.0)
