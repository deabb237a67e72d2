"""The stand-in's ``network_latency_ms``: a DSS → SPCS round trip that delays answers without holding a worker.

``latency_ms`` is service time (it holds a capacity slot, like a slower model); ``network_latency_ms`` is the hop
before the ingress, so requests waiting on it must not count against the service's capacity.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from spcs_llm.core.errors import ConfigurationError

BODY = {"data": [[0, "a short sentence", None, None]]}  # sentence, batch_size, truncate_dim


def _encode(stack, headers) -> requests.Response:
    return requests.post(f"{stack.embed_url}/encode", json=BODY, headers=headers, timeout=30)


def _in_flight_midway(stack, headers, requests_sent: int) -> tuple[int, list[int]]:
    """Send requests at once, read the service's in-flight counter while they wait, return it and the codes."""
    with ThreadPoolExecutor(max_workers=requests_sent) as pool:
        pending = [pool.submit(_encode, stack, headers) for _ in range(requests_sent)]
        time.sleep(0.5)
        in_flight = stack.stats("embed")["in_flight"]
        codes = [future.result().status_code for future in pending]
    return in_flight, codes


def test_network_latency_delays_every_answer(clean_stack, pat_headers):
    clean_stack.set_faults("embed", network_latency_ms=300)
    started = time.monotonic()
    assert _encode(clean_stack, pat_headers).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_network_latency_holds_no_capacity_slot(clean_stack, pat_headers):
    clean_stack.set_faults("embed", network_latency_ms=1500)
    in_flight, codes = _in_flight_midway(clean_stack, pat_headers, 3)
    assert in_flight == 0
    assert codes == [200, 200, 200]


def test_service_latency_does_hold_capacity_slots(clean_stack, pat_headers):
    clean_stack.set_faults("embed", latency_ms=1500)
    in_flight, codes = _in_flight_midway(clean_stack, pat_headers, 3)
    assert in_flight == 3
    assert codes == [200, 200, 200]


def test_reset_faults_removes_the_network_latency(clean_stack, pat_headers):
    clean_stack.set_faults("embed", network_latency_ms=2000)
    clean_stack.reset_faults()
    started = time.monotonic()
    assert _encode(clean_stack, pat_headers).status_code == 200
    assert time.monotonic() - started < 1.5


def test_negative_network_latency_is_refused(clean_stack):
    with pytest.raises(ConfigurationError, match="cannot be negative"):
        clean_stack.set_faults("embed", network_latency_ms=-5)
