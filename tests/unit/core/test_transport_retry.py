"""The one retry policy: what is retried, the back-off schedule, and its bounds (recorded sleeps, no waiting)."""

import logging
import random
from email.utils import formatdate

import pytest
import requests
import responses

from error_checks import assert_fix
from spcs_llm.core.auth import Credential
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.errors import (
    EndpointNotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServiceUnavailableError,
    TransportError,
)
from spcs_llm.core.retry import RetrySettings, full_jitter, parse_retry_after
from spcs_llm.core.transport import Transport

BASE = "https://abc-org-acct.snowflakecomputing.app"
URL = f"{BASE}/predict"
WALL_NOW = 1_800_000_000.0


class FakeTokens:
    identity = "fake-identity"

    def __init__(self) -> None:
        self.current = Credential("retry-test-token-0001", expires_at=float("inf"))

    def credential(self) -> Credential:
        return self.current

    def renew(self, rejected: Credential) -> Credential:
        self.current = Credential("retry-test-token-0002", expires_at=float("inf"))
        return self.current


class CeilingRandom(random.Random):
    """Always picks the top of the jitter range, and records the ranges asked for."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        return b


def make_transport(fake_time, *, max_attempts=6, max_retry_seconds=120.0, rng=None, **settings) -> Transport:
    endpoint = EndpointConfig(base_url=BASE, route="predict", max_attempts=max_attempts,
                              max_retry_seconds=max_retry_seconds)
    return Transport(endpoint, FakeTokens(), retry_settings=RetrySettings(**settings), sleep=fake_time.sleep,
                     rng=rng or CeilingRandom(), clock=fake_time.clock, wall_clock=lambda: WALL_NOW)


def add_status(mocked, status, times=1, headers=None, body='{"error": "busy"}'):
    for _ in range(times):
        mocked.add(responses.POST, URL, status=status, body=body, headers=headers or {},
                   content_type="application/json")


def add_ok(mocked, payload='{"data": [[0, {"output": 1}]]}'):
    mocked.add(responses.POST, URL, status=200, body=payload, content_type="application/json")


@pytest.mark.parametrize("status", [429, 503, 504])
def test_retryable_status_is_retried_then_succeeds(mocked, fake_time, status):
    add_status(mocked, status, times=2)
    add_ok(mocked)
    result = make_transport(fake_time).post_json("predict", {"data": [[0, "x"]]})
    assert result.payload == {"data": [[0, {"output": 1}]]}
    assert result.attempts == 3 and len(mocked.calls) == 3
    assert result.retry_reasons == [str(status), str(status)]
    assert fake_time.sleeps == [1.0, 2.0]  # ceiling jitter: initial × 2^(k-1)


def test_jitter_is_full_and_capped(mocked, fake_time):
    add_status(mocked, 504, times=6)
    rng = CeilingRandom()
    with pytest.raises(ServiceUnavailableError) as info:
        make_transport(fake_time, rng=rng, initial_backoff=1.0, max_backoff=5.0).post_json("predict", {})
    assert_fix(info, "ALTER SERVICE <service> RESUME")
    assert rng.ranges[:5] == [(0.0, 1.0), (0.0, 2.0), (0.0, 4.0), (0.0, 5.0), (0.0, 5.0)]
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_within_its_ceiling():
    rng = random.Random(42)
    settings = RetrySettings(initial_backoff=0.5, max_backoff=8.0)
    for attempt in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        draws = [full_jitter(attempt, settings, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling / 2  # spread over the range, not a fixed delay


def test_stops_at_max_attempts(mocked, fake_time):
    add_status(mocked, 504, times=10)
    with pytest.raises(ServiceUnavailableError) as info:
        make_transport(fake_time, max_attempts=4).post_json("predict", {})
    assert len(mocked.calls) == 4 and len(fake_time.sleeps) == 3
    assert info.value.status == 504
    assert "4 attempts" in str(info.value) and "resum" in str(info.value)


def test_retry_after_seconds_is_honoured_and_stops_at_the_time_budget(mocked, fake_time):
    add_status(mocked, 429, times=10, headers={"Retry-After": "4"})
    with pytest.raises(RateLimitedError) as info:
        make_transport(fake_time, max_retry_seconds=10.0).post_json("predict", {})
    assert fake_time.sleeps == [4.0, 4.0, 2.0]  # the last wait is cut to the remaining budget
    assert len(mocked.calls) == 4
    assert info.value.status == 429
    assert_fix(info, "'Max parallelism'")


def test_retry_after_http_date_is_honoured_and_capped(mocked, fake_time):
    add_status(mocked, 503, headers={"Retry-After": formatdate(WALL_NOW + 7, usegmt=True)})
    add_status(mocked, 503, headers={"Retry-After": "3600"})
    add_ok(mocked)
    make_transport(fake_time, retry_after_cap=30.0).post_json("predict", {})
    assert fake_time.sleeps == [pytest.approx(7.0), 30.0]


def test_parse_retry_after_forms():
    assert parse_retry_after("12", now=WALL_NOW) == 12.0
    assert parse_retry_after(formatdate(WALL_NOW + 5, usegmt=True), now=WALL_NOW) == pytest.approx(5.0)
    assert parse_retry_after(formatdate(WALL_NOW - 50, usegmt=True), now=WALL_NOW) == 0.0
    assert parse_retry_after("soon", now=WALL_NOW) is None
    assert parse_retry_after(None, now=WALL_NOW) is None


@pytest.mark.parametrize(
    "status, error",
    [(400, RequestRejectedError), (404, EndpointNotFoundError), (413, PayloadTooLargeError),
     (422, RequestRejectedError)],
)
def test_client_errors_are_never_retried(mocked, fake_time, status, error):
    add_status(mocked, status, times=3)
    with pytest.raises(error) as info:
        make_transport(fake_time).post_json("predict", {})
    assert len(mocked.calls) == 1 and fake_time.sleeps == []
    assert info.value.status == status
    remedies = {RequestRejectedError: "SHOW FUNCTIONS IN MODEL", EndpointNotFoundError: "SHOW ENDPOINTS IN SERVICE",
                PayloadTooLargeError: "'Rows per request'"}
    assert_fix(info, remedies[error])


def test_connection_error_is_retried(mocked, fake_time):
    mocked.add(responses.POST, URL, body=requests.exceptions.ConnectionError("connection refused"))
    mocked.add(responses.POST, URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    add_ok(mocked)
    result = make_transport(fake_time).post_json("predict", {})
    assert result.attempts == 3 and result.retry_reasons == ["connection", "connection"]


def test_connection_errors_exhausted_raise_transport_error(mocked, fake_time):
    for _ in range(3):
        mocked.add(responses.POST, URL, body=requests.exceptions.ConnectionError(
            "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"))
    with pytest.raises(TransportError) as info:
        make_transport(fake_time, max_attempts=3).post_json("predict", {})
    assert "3 attempts" in str(info.value) and info.value.status is None


def test_dns_failure_is_host_not_found_without_retry(mocked, fake_time):
    mocked.add(responses.POST, URL, body=requests.exceptions.ConnectionError(
        "Failed to resolve 'abc-org-acct.snowflakecomputing.app' ([Errno -2] Name or service not known)"))
    with pytest.raises(EndpointNotFoundError) as info:
        make_transport(fake_time).post_json("predict", {})
    assert "not found" in str(info.value) and len(mocked.calls) == 1


def test_read_timeout_is_not_retried_and_names_the_fix(mocked, fake_time):
    mocked.add(responses.POST, URL, body=requests.exceptions.ReadTimeout("Read timed out"))
    add_ok(mocked)
    with pytest.raises(TransportError) as info:
        make_transport(fake_time).post_json("predict", {})
    text = str(info.value)
    assert len(mocked.calls) == 1
    assert "Read timeout" in text and "60 s" in text and "max output tokens" in text


def test_403_is_retried_while_the_endpoint_never_answered_2xx(mocked, fake_time):
    add_status(mocked, 403, times=2, body='{"error": "could not find service"}')
    add_ok(mocked)
    transport = make_transport(fake_time)
    assert transport.post_json("predict", {}).retry_reasons == ["403", "403"]
    add_status(mocked, 403)
    with pytest.raises(PermissionDeniedError) as info:  # routing works now: 403 is a missing grant
        transport.post_json("predict", {})
    assert len(mocked.calls) == 4 and info.value.status == 403
    assert_fix(info, "GRANT SERVICE ROLE", "ALL_ENDPOINTS_USAGE")


def test_403_window_is_bounded(mocked, fake_time):
    add_status(mocked, 403, times=10, body='{"error": "forbidden"}')
    with pytest.raises(PermissionDeniedError) as info:
        make_transport(fake_time, initial_backoff=2.0, max_backoff=2.0, deploy_403_window=5.0).post_json("predict", {})
    assert_fix(info, "GRANT SERVICE ROLE", "ALL_ENDPOINTS_USAGE")
    assert fake_time.sleeps == [2.0, 2.0, 2.0]  # 403 at t=6 is past the 5 s window
    assert len(mocked.calls) == 4


def test_each_retry_is_logged_at_info_without_headers_or_body(mocked, fake_time, caplog):
    caplog.set_level(logging.DEBUG)
    add_status(mocked, 504, body='{"error": "body-text-marker"}')
    add_ok(mocked)
    make_transport(fake_time).post_json("predict?x=1", {"data": [[0, "prompt-text-marker"]]}, trace_name="chat")
    retry_lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "retrying" in r.getMessage()]
    assert len(retry_lines) == 1
    line = retry_lines[0]
    assert f"POST {URL} (chat)" in line and "504" in line and "attempt 1/6" in line and "1.00 s" in line
    assert "x=1" not in caplog.text
    assert "marker" not in caplog.text and "retry-test-token" not in caplog.text
