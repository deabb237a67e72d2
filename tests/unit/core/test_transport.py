"""Transport: auth renewal, redirects, answer mapping, the shared limiter, SSE streams and secret hygiene."""

import json
import logging
import threading
import time

import pytest
import requests
import responses

from error_checks import assert_fix
from spcs_llm.core.auth import Credential
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.endpoint_state import endpoint_state
from spcs_llm.core.errors import (
    AuthenticationError,
    BadResponseError,
    CredentialMissingError,
    EndpointNotFoundError,
    InputTooLongError,
    PayloadTooLargeError,
    RequestRejectedError,
    TransportError,
)
from spcs_llm.core.limiter import EndpointLimiter
from spcs_llm.core.redaction import register_secret
from spcs_llm.core.sse import EventStream
from spcs_llm.core.transport import Transport

BASE = "https://abc-org-acct.snowflakecomputing.app"
URL = f"{BASE}/__call__"
LOGIN_URL = "https://app.snowflake.com/login?next=abc"
FIRST_TOKEN = "first-fake-token-AAAA1111"
SECOND_TOKEN = "second-fake-token-BBBB2222"


class FakeTokens:
    """Hands out FIRST_TOKEN, then SECOND_TOKEN on renewal; or raises ``renew_error``."""

    identity = "fake-identity"

    def __init__(self, renew_error: Exception | None = None) -> None:
        self.current = Credential(FIRST_TOKEN, expires_at=float("inf"))
        self.rejected: list[Credential] = []
        self.renew_error = renew_error

    def credential(self) -> Credential:
        return self.current

    def renew(self, rejected: Credential) -> Credential:
        self.rejected.append(rejected)
        if self.renew_error:
            raise self.renew_error
        self.current = Credential(SECOND_TOKEN, expires_at=float("inf"))
        return self.current


def make_transport(tokens=None, **endpoint) -> Transport:
    config = EndpointConfig(base_url=BASE, route="__call__", **endpoint)
    return Transport(config, tokens or FakeTokens(), sleep=lambda s: None)


def sent_tokens(mocked) -> list[str]:
    return [call.request.headers["Authorization"] for call in mocked.calls]


def add_json(mocked, status, payload, headers=None):
    mocked.add(responses.POST, URL, status=status, json=payload, headers=headers or {})


def test_success_sends_json_with_the_credential_and_reports_the_call(mocked):
    add_json(mocked, 200, {"data": [[0, {"output": "hi"}]]})
    result = make_transport().post_json("__call__", {"data": [[0, "hello"]]})
    assert result.payload == {"data": [[0, {"output": "hi"}]]}
    assert (result.status, result.attempts, result.renewals, result.retry_reasons) == (200, 1, 0, [])
    assert result.events is None
    request = mocked.calls[0].request
    assert json.loads(request.body) == {"data": [[0, "hello"]]}
    assert request.headers["Authorization"] == f'Snowflake Token="{FIRST_TOKEN}"'
    assert request.headers["Content-Type"] == "application/json"
    assert result.busy_seconds >= 0 and endpoint_state(BASE).ledger.requests == 1


def test_401_renews_once_and_succeeds(mocked):
    add_json(mocked, 401, {"message": "Unauthorized"})
    add_json(mocked, 200, {"data": []})
    tokens = FakeTokens()
    result = make_transport(tokens).post_json("__call__", {})
    assert (result.attempts, result.renewals) == (2, 1)
    assert tokens.rejected[0].token == FIRST_TOKEN
    assert sent_tokens(mocked) == [f'Snowflake Token="{FIRST_TOKEN}"', f'Snowflake Token="{SECOND_TOKEN}"']


def test_401_twice_is_an_authentication_error(mocked):
    add_json(mocked, 200, {"data": []})  # the endpoint has answered before: no grant is still propagating
    add_json(mocked, 401, {"message": "Unauthorized"})
    add_json(mocked, 401, {"message": "Unauthorized"})
    add_json(mocked, 200, {"data": []})
    transport = make_transport()
    transport.post_json("__call__", {})
    with pytest.raises(AuthenticationError) as info:
        transport.post_json("__call__", {})
    assert len(mocked.calls) == 3 and info.value.status == 401
    assert "Credentials" in str(info.value)


def test_redirect_is_an_auth_answer_and_is_never_followed(mocked):
    mocked.add(responses.POST, URL, status=302, headers={"Location": LOGIN_URL})
    login = mocked.add(responses.GET, LOGIN_URL, status=200, body="<html>login</html>")
    add_json(mocked, 200, {"data": [[0, 1]]})
    result = make_transport().post_json("__call__", {})
    assert result.renewals == 1 and result.payload == {"data": [[0, 1]]}
    assert login.call_count == 0
    assert all(call.request.url == URL for call in mocked.calls)


@pytest.mark.parametrize("code", ["390104", "390112", "390318"])
def test_snowflake_auth_codes_renew(mocked, code):
    add_json(mocked, 400, {"code": code, "message": "User must login again.", "success": False})
    add_json(mocked, 200, {"data": []})
    assert make_transport().post_json("__call__", {}).renewals == 1


def test_credential_missing_from_renew_propagates(mocked):
    add_json(mocked, 401, {})
    tokens = FakeTokens(renew_error=CredentialMissingError("No OAuth token for this user."))
    with pytest.raises(CredentialMissingError) as refused:
        make_transport(tokens).post_json("__call__", {})
    assert_fix(refused, "Profile & Settings → Credentials", "Authorize")


def test_a_later_attempt_may_renew_again_but_a_renewed_credential_refused_at_once_fails(mocked):
    # Renewal is once per attempt: a token renewed before a 503 may expire during the back-off (see
    # tests/unit/test_reliability_fixes.py), but a credential refused right after its renewal ends the call.
    add_json(mocked, 200, {"data": []})  # answered before: a refusal right after renewal is final
    add_json(mocked, 401, {})
    add_json(mocked, 503, {"error": "overloaded"})
    add_json(mocked, 401, {})
    add_json(mocked, 401, {})
    transport = make_transport()
    transport.post_json("__call__", {})
    with pytest.raises(AuthenticationError) as refused:
        transport.post_json("__call__", {})
    assert_fix(refused, "Re-authorise", "Credentials")
    assert len(mocked.calls) == 5


@pytest.mark.parametrize(
    "status, body, error, words",
    [
        (400, {"error": "Input is too long for the model's context window"}, InputTooLongError, "too long"),
        (422, {"detail": [{"msg": "field required: messages"}]}, RequestRejectedError, "field required"),
        (400, {"error": "bad column"}, RequestRejectedError, "bad column"),
        (404, {"error": "no route"}, EndpointNotFoundError, "not found"),
        (413, {"error": "too big"}, PayloadTooLargeError, "too large"),
        (500, {"error": "empty data"}, AuthenticationError, "session token"),
        (500, {"error": "CUDA out of memory"}, BadResponseError, "CUDA out of memory"),
    ],
)
def test_final_failures_map_to_typed_errors(mocked, status, body, error, words):
    add_json(mocked, status, body)
    with pytest.raises(error) as info:
        make_transport().post_json("__call__", {})
    assert info.value.status == status
    assert words in str(info.value)


def test_payload_too_large_is_a_rejected_request():
    assert issubclass(PayloadTooLargeError, RequestRejectedError)


def test_html_login_page_is_a_bad_response(mocked):
    page = "<!DOCTYPE html><html><head><title>Snowflake</title></head><body>Sign in to Snowflake" + "x" * 500
    mocked.add(responses.POST, URL, status=200, body=page, content_type="text/html")
    with pytest.raises(BadResponseError) as info:
        make_transport().post_json("__call__", {})
    text = str(info.value)
    assert "HTML login page" in text and info.value.status == 200
    assert "x" * 300 not in text  # only a short snippet


def test_non_json_body_is_a_bad_response(mocked):
    mocked.add(responses.POST, URL, status=200, body="upstream connect error", content_type="text/plain")
    with pytest.raises(BadResponseError, match="not JSON"):
        make_transport().post_json("__call__", {})


def test_limiter_holds_the_bound_under_16_threads(mocked):
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow_ok(request):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
        return 200, {}, '{"data": []}'

    mocked.add_callback(responses.POST, URL, callback=slow_ok, content_type="application/json")
    transport = make_transport(max_parallelism=3)
    threads = [threading.Thread(target=lambda: [transport.post_json("__call__", {}) for _ in range(3)])
               for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(mocked.calls) == 48
    assert peak[0] == 3
    state = endpoint_state(BASE)
    assert state.limiter.in_use == 0 and state.ledger.summary().in_flight == 0


def test_latest_configuration_resizes_the_shared_limiter(mocked):
    first = make_transport(max_parallelism=2)
    second = make_transport(max_parallelism=7)
    assert first.state is second.state
    assert endpoint_state(BASE).limiter.limit == 7
    assert endpoint_state(BASE).pool_size >= 7


def test_limiter_resize_releases_waiters():
    limiter = EndpointLimiter(1)
    limiter.acquire()
    entered = threading.Event()

    def waiter():
        with limiter.slot():
            entered.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not entered.wait(0.05)
    limiter.resize(2)
    assert entered.wait(2.0)
    thread.join()
    limiter.release()
    assert limiter.in_use == 0


def test_limiter_rejects_a_limit_below_one():
    with pytest.raises(Exception, match="at least 1"):
        EndpointLimiter(0)


def test_sse_events_are_parsed_and_hold_the_slot_until_exhausted(mocked):
    body = (
        ": keep-alive\n\n"
        'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n'
        'data: {"choices": [{"delta": {"content": "lo"}}],\r\n'
        'data:  "usage": {"total_tokens": 3}}\r\n\r\n'
        "data: [DONE]\n\n"
        'data: {"after": "done"}\n\n'
    )
    mocked.add(responses.POST, URL, status=200, body=body, content_type="text/event-stream")
    result = make_transport().post_json("__call__", {"stream": True}, stream=True)
    assert result.payload is None and result.events is not None
    state = endpoint_state(BASE)
    assert state.limiter.in_use == 1 and state.ledger.summary().in_flight == 1
    assert "text/event-stream" in mocked.calls[0].request.headers["Accept"]
    events = list(result.events)
    assert events == [
        {"choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}}], "usage": {"total_tokens": 3}},
    ]
    assert state.limiter.in_use == 0 and state.ledger.summary().in_flight == 0


def test_closing_an_unread_stream_releases_the_slot(mocked):
    mocked.add(responses.POST, URL, status=200, body='data: {"a": 1}\n\n', content_type="text/event-stream")
    result = make_transport().post_json("__call__", {}, stream=True)
    result.events.close()
    assert list(result.events) == []
    assert endpoint_state(BASE).limiter.in_use == 0


def test_stream_request_answered_with_json_sets_the_payload(mocked):
    add_json(mocked, 503, {"error": "resuming"})
    add_json(mocked, 200, {"data": [[0, {"output": "whole"}]]})
    result = make_transport().post_json("__call__", {}, stream=True)
    assert result.events is None and result.payload == {"data": [[0, {"output": "whole"}]]}
    assert result.retry_reasons == ["503"]
    assert endpoint_state(BASE).limiter.in_use == 0


def test_no_secret_reaches_logs_or_exception_text(mocked, caplog):
    caplog.set_level(logging.DEBUG)
    register_secret(SECOND_TOKEN)  # token sources register what they hand out
    add_json(mocked, 401, {"message": f"token {FIRST_TOKEN} expired"})
    add_json(mocked, 503, {"error": "resuming"})
    add_json(mocked, 400, {"error": f"bad header value {SECOND_TOKEN}"})
    with pytest.raises(RequestRejectedError) as info:
        make_transport().post_json("__call__", {"secret": "x"})
    exception_text = str(info.value) + repr(info.value)
    for token in (FIRST_TOKEN, SECOND_TOKEN):
        assert token not in caplog.text
        assert token not in exception_text
    assert "bad header" in exception_text


class ChunkedResponse:
    """Stands in for a streamed requests.Response whose body arrives in awkward pieces."""

    def __init__(self, chunks, error=None):
        self.chunks, self.error, self.closed = chunks, error, False

    def iter_content(self, chunk_size=None):
        yield from self.chunks
        if self.error:
            raise self.error

    def close(self):
        self.closed = True


def test_sse_lines_split_across_chunks_and_multibyte_characters():
    text = 'data: {"text": "caf\u00e9 \u2615"}\r\n\r\ndata: {"n": 2}\n\n'.encode("utf-8")
    chunks = [text[i:i + 3] for i in range(0, len(text), 3)]  # splits lines and UTF-8 sequences
    closed = []
    stream = EventStream(ChunkedResponse(chunks), lambda: closed.append(True), URL)
    assert list(stream) == [{"text": "caf\u00e9 \u2615"}, {"n": 2}]
    assert closed == [True]


def test_broken_stream_is_a_transport_error_and_releases():
    closed = []
    response = ChunkedResponse([b'data: {"n": 1}\n\n'], error=requests.exceptions.ChunkedEncodingError("reset"))
    stream = EventStream(response, lambda: closed.append(True), URL)
    assert next(stream) == {"n": 1}
    with pytest.raises(TransportError, match="not retried"):
        next(stream)
    assert closed == [True] and response.closed


def test_non_json_event_is_a_bad_response():
    stream = EventStream(ChunkedResponse([b"data: hello\n\n"]), lambda: None, URL)
    with pytest.raises(BadResponseError, match="not JSON"):
        list(stream)


def test_a_2xx_with_a_failed_snowflake_auth_code_renews(mocked):
    add_json(mocked, 200, {"success": False, "code": "390112", "message": "Your session has expired."})
    add_json(mocked, 200, {"data": [[0, 1]]})
    result = make_transport().post_json("__call__", {})
    assert result.renewals == 1 and result.payload == {"data": [[0, 1]]}


def test_a_2xx_rejection_is_recognised_whatever_the_spelling_of_its_keys(mocked):
    escaped = '{"\\u0073uccess": false, "code": "390112", "message": "Your session has expired."}'
    mocked.add(responses.POST, URL, status=200, body=escaped, content_type="application/json")
    mocked.add(responses.POST, URL, status=200, body='{"data": [[0, {"output": "success"}]]}',
               content_type="application/json")
    result = make_transport().post_json("__call__", {})
    assert result.renewals == 1 and result.payload == {"data": [[0, {"output": "success"}]]}


def test_a_proxy_from_the_environment_is_still_used(monkeypatch, mocked):
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    transport = make_transport()
    real_send, seen = transport.state.session.send, []

    def send(prepared, **kwargs):
        seen.append(kwargs)
        return real_send(prepared, **kwargs)

    monkeypatch.setattr(transport.state.session, "send", send)
    add_json(mocked, 200, {"data": []})
    add_json(mocked, 200, {"data": []})
    transport.post_json("__call__", {})
    transport.post_json("__call__", {})
    assert [kwargs["proxies"].get("https") for kwargs in seen] == ["http://proxy.example:3128"] * 2
    assert all(kwargs["allow_redirects"] is False for kwargs in seen)
