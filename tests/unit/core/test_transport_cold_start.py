"""A suspended service waking up (503, 502, refused connections) is waited for within its own budget; a 401 right
after a grant gets one more chance. Time is simulated: the clock moves only when the code under test sleeps."""

import json
import logging
import random
from pathlib import Path

import pytest
import requests
import responses

from error_checks import assert_fix
from spcs_llm.core.auth import Credential
from spcs_llm.core.config import DEFAULT_COLD_START_TIMEOUT, EndpointConfig, parse_endpoint
from spcs_llm.core.errors import (
    AuthenticationError,
    ServiceResumeTimeoutError,
    ServiceUnavailableError,
    TransportError,
)
from spcs_llm.core.retry import RetrySettings
from spcs_llm.core.transport import Transport
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingClient

ROOT = Path(__file__).resolve().parents[3]
BASE = "https://cold-org-acct.snowflakecomputing.app"
URL = f"{BASE}/encode"
OK = {"data": [[0, {"output": [1.0]}]]}
PAT_REFUSED = "The SPCS endpoint rejected the programmatic access token (PAT)."


class Tokens:
    """Renewable session tokens, or (``renewable=False``) a PAT whose renewal is refused like PatSource's."""

    identity = "cold-start-tests"

    def __init__(self, renewable: bool = True) -> None:
        self.renewable = renewable
        self.renewals = 0
        self.current = Credential("cold-start-token-000", expires_at=float("inf"))

    def credential(self) -> Credential:
        return self.current

    def renew(self, rejected: Credential) -> Credential:
        if not self.renewable:
            raise AuthenticationError(PAT_REFUSED, fix="Check the PAT.")
        self.renewals += 1
        self.current = Credential(f"cold-start-token-{self.renewals:03d}", expires_at=float("inf"))
        return self.current


def make_transport(fake_time, tokens=None, **endpoint) -> Transport:
    settings = {"max_attempts": 3, "max_retry_seconds": 10.0, "cold_start_timeout": 300.0, **endpoint}
    return Transport(EndpointConfig(base_url=BASE, route="encode", **settings), tokens or Tokens(),
                     retry_settings=RetrySettings(initial_backoff=1.0, max_backoff=20.0), sleep=fake_time.sleep,
                     rng=random.Random(7), clock=fake_time.clock)


def resuming_service(fake_time, phases):
    """Answers each phase's status until its end time (simulated seconds), then 200."""

    def answer(request):
        for until, status in phases:
            if fake_time.now < until:
                if status == "refuse":
                    raise requests.exceptions.ConnectionError(
                        "HTTPSConnectionPool: Max retries exceeded (Caused by NewConnectionError("
                        "'Failed to establish a new connection: [Errno 111] Connection refused'))")
                return status, {"Content-Type": "text/html"}, f"<html><h1>{status}</h1></html>"
        return 200, {"Content-Type": "application/json"}, json.dumps(OK)

    return answer


@responses.activate
def test_502_then_503_then_ok_over_a_simulated_minute_succeeds_with_the_wait_reported(fake_time, caplog):
    responses.add_callback(responses.POST, URL, callback=resuming_service(fake_time, [(30, 502), (60, 503)]))
    with caplog.at_level(logging.INFO, logger="spcs_llm"):
        result = make_transport(fake_time).post_json("encode", {"data": []})
    assert result.payload == OK
    assert 60 <= result.cold_start_wait_seconds <= 80 and fake_time.now >= 60
    assert len(responses.calls) > 3  # far more than max_attempts: the cold-start budget applies, not the ordinary one
    assert {"502", "503"} <= set(result.retry_reasons)
    assert "service resuming, waited" in caplog.text


@responses.activate
def test_connection_refused_while_resuming_is_retried(fake_time):
    responses.add_callback(responses.POST, URL, callback=resuming_service(fake_time, [(20, 503), (50, "refuse")]))
    result = make_transport(fake_time).post_json("encode", {"data": []})
    assert result.payload == OK and result.cold_start_wait_seconds >= 50
    assert "connection" in result.retry_reasons


@responses.activate
def test_connection_refused_by_a_service_that_answered_before_is_a_resume(fake_time):
    responses.add(responses.POST, URL, status=200, json=OK)
    transport = make_transport(fake_time)
    transport.post_json("encode", {"data": []})
    responses.add_callback(responses.POST, URL, callback=resuming_service(fake_time, [(45, "refuse")]))
    result = transport.post_json("encode", {"data": []})
    assert result.payload == OK and result.cold_start_wait_seconds >= 40


@responses.activate
def test_connection_refused_at_first_contact_is_not_waited_for(fake_time):
    responses.add_callback(responses.POST, URL, callback=resuming_service(fake_time, [(10_000, "refuse")]))
    with pytest.raises(TransportError, match="Could not reach") as info:
        make_transport(fake_time).post_json("encode", {"data": []})
    assert not isinstance(info.value, ServiceResumeTimeoutError)
    assert len(responses.calls) == 3 and fake_time.now < 10  # max_attempts: a wrong host or port, not a resume


@responses.activate
def test_a_service_that_never_resumes_fails_with_the_budget_and_the_fix(fake_time):
    responses.add_callback(responses.POST, URL, callback=resuming_service(fake_time, [(10_000, 502)]))
    with pytest.raises(ServiceResumeTimeoutError) as info:
        make_transport(fake_time, cold_start_timeout=120.0).post_json("encode", {"data": []})
    text = str(info.value)
    assert "did not finish resuming within 120 s" in text and "502" in text
    assert "'Cold-start wait (s)'" in text and "MIN_INSTANCES = 1" in text
    assert 120 <= fake_time.now < 125


@responses.activate
def test_waiting_for_a_resume_does_not_use_up_the_ordinary_budget(fake_time):
    rate_limited = []

    def service(request):
        if fake_time.now < 100:
            return 502, {}, "bad gateway"
        if len(rate_limited) < 2:
            rate_limited.append(fake_time.now)
            return 429, {"Content-Type": "application/json"}, '{"error": "Too many requests"}'
        return 200, {"Content-Type": "application/json"}, json.dumps(OK)

    responses.add_callback(responses.POST, URL, callback=service)
    result = make_transport(fake_time, max_retry_seconds=10.0).post_json("encode", {"data": []})
    assert result.payload == OK and result.retry_reasons[-2:] == ["429", "429"]


@responses.activate
def test_a_503_from_a_service_that_just_answered_is_overload_with_the_ordinary_budget(fake_time):
    responses.add(responses.POST, URL, status=200, json=OK)
    for _ in range(5):
        responses.add(responses.POST, URL, status=503, json={"error": "busy"})
    transport = make_transport(fake_time)
    transport.post_json("encode", {"data": []})
    with pytest.raises(ServiceUnavailableError) as info:
        transport.post_json("encode", {"data": []})
    assert not isinstance(info.value, ServiceResumeTimeoutError)
    assert_fix(info, "ALTER SERVICE <service> RESUME")
    assert len(responses.calls) == 1 + 3  # max_attempts


@responses.activate
def test_a_cold_start_wait_of_zero_leaves_502_to_the_ordinary_budget(fake_time):
    for _ in range(5):
        responses.add(responses.POST, URL, status=502, body="bad gateway")
    with pytest.raises(ServiceUnavailableError) as info:
        make_transport(fake_time, cold_start_timeout=0.0).post_json("encode", {"data": []})
    assert not isinstance(info.value, ServiceResumeTimeoutError) and info.value.status == 502
    assert_fix(info, "ALTER SERVICE <service> RESUME")
    assert len(responses.calls) == 3


@responses.activate
def test_a_read_timeout_while_resuming_is_still_not_retried(fake_time):
    responses.add(responses.POST, URL, status=502, body="bad gateway")
    responses.add(responses.POST, URL, body=requests.exceptions.ReadTimeout("Read timed out"))
    responses.add(responses.POST, URL, status=200, json=OK)
    with pytest.raises(Exception, match="not retried"):
        make_transport(fake_time).post_json("encode", {"data": []})
    assert len(responses.calls) == 2


def test_the_cold_start_wait_is_a_setting_with_a_documented_default():
    assert DEFAULT_COLD_START_TIMEOUT == 900.0
    assert parse_endpoint({"endpoint": BASE}, default_route="encode").cold_start_timeout == 900.0
    chosen = parse_endpoint({"endpoint": BASE, "cold_start_timeout": "60"}, default_route="encode")
    assert chosen.cold_start_timeout == 60
    for component in ("spcs-chat", "spcs-embeddings"):
        params = json.loads((ROOT / "python-llms" / component / "llm.json").read_text())["params"]
        setting = next(p for p in params if p.get("name") == "cold_start_timeout")
        assert setting["label"] == "Cold-start wait (s)" and setting["defaultValue"] == DEFAULT_COLD_START_TIMEOUT


@responses.activate
def test_embeddings_stop_at_once_when_the_service_never_resumes():
    responses.add(responses.POST, URL, status=502, body="bad gateway")
    config = parse_embedding_config({
        "auth_type": "service", "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-cold-start"},
        "endpoint": BASE, "cold_start_timeout": 0.001, "rows_per_request": 1, "max_parallelism": 1,
    })
    with pytest.raises(ServiceResumeTimeoutError) as info:
        EmbeddingClient(config).embed(["a", "b", "c"])
    assert_fix(info, "'Cold-start wait (s)'", "MIN_INSTANCES = 1")
    assert len(responses.calls) <= 4  # the batch that failed and at most the one already started, not all three


# --------------------------------------------------------------------------------------- 401 right after a grant


@responses.activate
def test_a_401_right_after_a_grant_is_retried_once_more_after_a_short_wait(fake_time):
    for status in (401, 401):
        responses.add(responses.POST, URL, status=status, json={"message": "Unauthorized"})
    responses.add(responses.POST, URL, status=200, json=OK)
    tokens = Tokens()
    result = make_transport(fake_time, tokens).post_json("encode", {"data": []})
    assert result.payload == OK and result.renewals == 2 and tokens.renewals == 2
    assert fake_time.sleeps == [4.0] and "401-after-grant" in result.retry_reasons


@responses.activate
def test_a_pat_refused_right_after_a_grant_is_sent_once_more(fake_time):
    responses.add(responses.POST, URL, status=401, json={"message": "Unauthorized"})
    responses.add(responses.POST, URL, status=200, json=OK)
    result = make_transport(fake_time, Tokens(renewable=False)).post_json("encode", {"data": []})
    assert result.payload == OK and fake_time.sleeps == [4.0]
    tokens_sent = {c.request.headers["Authorization"] for c in responses.calls}
    assert tokens_sent == {'Snowflake Token="cold-start-token-000"'}


@responses.activate
def test_a_pat_still_refused_fails_with_the_pat_fix(fake_time):
    for _ in range(3):
        responses.add(responses.POST, URL, status=401, json={"message": "Unauthorized"})
    with pytest.raises(AuthenticationError, match="programmatic access token"):
        make_transport(fake_time, Tokens(renewable=False)).post_json("encode", {"data": []})
    assert len(responses.calls) == 2


@responses.activate
def test_the_grant_retry_is_only_once_per_call(fake_time):
    for _ in range(5):
        responses.add(responses.POST, URL, status=401, json={"message": "Unauthorized"})
    with pytest.raises(AuthenticationError, match="even after renewing"):
        make_transport(fake_time).post_json("encode", {"data": []})
    assert len(responses.calls) == 3 and fake_time.sleeps == [4.0]


@responses.activate
def test_an_endpoint_that_answered_before_gets_no_grant_retry(fake_time):
    responses.add(responses.POST, URL, status=200, json=OK)
    for _ in range(3):
        responses.add(responses.POST, URL, status=401, json={"message": "Unauthorized"})
    transport = make_transport(fake_time)
    transport.post_json("encode", {"data": []})
    with pytest.raises(AuthenticationError) as info:
        transport.post_json("encode", {"data": []})
    assert_fix(info, "Re-authorise", "Credentials")
    assert len(responses.calls) == 3 and fake_time.sleeps == []
