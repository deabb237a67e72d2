"""Pooled sessions, the per-endpoint limiter and the one retry policy, behind ``Transport.post_json``.

Everything shared is per endpoint base URL per process: one pooled
``requests.Session``, one ``EndpointLimiter`` and one ``BusyTimeLedger``, so every DSS component instance and
thread together respects the endpoint's parallelism and is charged its share of busy time.
Redirects are never followed: a 3xx from the ingress is an auth answer.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from spcs_llm.core.backend import PLAIN, BackendProfile
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.endpoint_state import InFlight, configured_state
from spcs_llm.core.errors import AuthenticationError, CredentialMissingError, SpcsLlmError
from spcs_llm.core.http_answers import (
    auth_rejection,
    authentication_failed,
    error_for_exhausted,
    error_for_status,
    failure_for_exception,
    not_json_error,
    resume_timed_out,
)
from spcs_llm.core.json_codec import loads as decode_json
from spcs_llm.core.redaction import get_logger
from spcs_llm.core.retry import RetryableError, RetryPolicy, RetrySettings, parse_retry_after
from spcs_llm.core.sse import EventStream

if TYPE_CHECKING:
    from spcs_llm.core.auth import Credential, TokenSource

LOG = get_logger(__name__)
RETRIED_STATUSES = (429, 502, 503, 504)


@dataclass
class CallResult:
    payload: Any  # parsed JSON body; None for an SSE stream
    status: int
    attempts: int = 1  # HTTP requests sent, renewals and retries included
    renewals: int = 0
    busy_seconds: float = 0.0  # this call's share of the endpoint's busy time (all attempts); final once a stream ends
    elapsed_seconds: float = 0.0  # wall time of the call; for a stream, until it is exhausted or closed
    retry_reasons: list[str] = field(default_factory=list)
    events: EventStream | None = None  # parsed JSON of SSE ``data:`` lines when the answer is text/event-stream
    cold_start_wait_seconds: float = 0.0  # how long the call waited for a resuming service (502/503/refused)


@dataclass
class _Answer:
    status: int
    reason: str
    headers: Any
    content: bytes = b""
    stream: requests.Response | None = None  # an open SSE response, its slot still held
    in_flight: InFlight | None = None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


@dataclass
class _Call:
    url: str
    display_url: str
    body: bytes
    stream: bool
    started: float
    attempts: int = 0
    renewals: int = 0
    busy_seconds: float = 0.0
    retry_reasons: list[str] = field(default_factory=list)
    resuming: bool = False  # a cold-start answer was seen: later 503s and refused connections are the resume too
    grant_retry_used: bool = False
    renewal_refused: SpcsLlmError | None = None  # why the credential could not be renewed, if it could not


class Transport:
    """Sends JSON POSTs to one endpoint with auth, the shared limit, the retry policy and cost tracking."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        tokens: TokenSource,
        *,
        profile: BackendProfile = PLAIN,
        retry_settings: RetrySettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.endpoint = endpoint
        self.tokens = tokens
        self.profile = profile  # the backend's advice per error and its transport options (``core/backend.py``)
        self.retry_settings = retry_settings or profile.retry
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._wall_clock = wall_clock
        self.state = configured_state(endpoint, clock)
        self._environments: dict[str, dict[str, Any]] = {}  # per URL: proxies and CA bundle from the environment

    def post_json(self, route: str, body: dict, *, stream: bool = False, trace_name: str | None = None) -> CallResult:
        """POST ``body`` as JSON to ``route`` and return the parsed answer, or raise a typed error."""
        url = f"{self.state.base_url}/{route.lstrip('/')}"
        parts = urlsplit(url)
        display_url = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        call = _Call(url=url, display_url=display_url, body=json.dumps(body).encode("utf-8"), stream=stream,
                     started=self._clock())
        label = f"POST {display_url}" + (f" ({trace_name})" if trace_name else "")
        policy = RetryPolicy(
            max_attempts=self.endpoint.max_attempts, max_retry_seconds=self.endpoint.max_retry_seconds,
            settings=self.retry_settings, sleep=self._sleep, rng=self._rng, clock=self._clock,
            label=label, cold_start_seconds=self.endpoint.cold_start_timeout if self.profile.cold_starts else 0.0,
        )
        try:
            for attempt in policy.retrying():
                with attempt:
                    answer = self._attempt(call)
        except RetryableError as failure:
            elapsed = self._clock() - call.started
            if failure.cold_start and policy.cold_start_seconds > 0:
                raise resume_timed_out(display_url, failure, policy.cold_start_seconds, elapsed,
                                       profile=self.profile) from None
            raise error_for_exhausted(display_url, failure, call.attempts, elapsed, profile=self.profile) from None
        result = self._result(call, answer)
        if policy.resume_started is not None:
            result.cold_start_wait_seconds = policy.resume_waited()
            LOG.info("%s: service resuming, waited %.0f s before it answered", display_url,
                     result.cold_start_wait_seconds)
        return result

    def _attempt(self, call: _Call) -> _Answer:
        """One try: send, renew the credential once if the ingress rejects it, then classify the answer.

        The one renewal is per attempt, not per call: a credential renewed in an earlier attempt may expire during
        a retry's back-off (short-lived session tokens), and that is no reason to give up. An endpoint that has
        never answered 2xx gets one more chance after a short wait (``_after_grant``).
        """
        credential = self.tokens.credential()
        renewed = False
        while True:
            answer = self._send(call, credential)
            rejection = None if answer.stream else auth_rejection(answer.status, answer.content)
            if rejection is None:
                return self._classify(call, answer)
            if renewed:
                if not self._may_retry_after_grant(call):
                    raise call.renewal_refused or authentication_failed(
                        call.display_url, rejection, answer.status, profile=self.profile)
                credential = self._after_grant(call, credential, rejection)
                continue
            LOG.info("%s rejected the credential (%s); renewing it and trying once more", call.display_url, rejection)
            renewed = True
            call.renewals += 1
            try:
                credential = self.tokens.renew(credential)
                self.state.limiter.skip_pause_once()  # the renewed credential goes out now, not after a pause
            except (AuthenticationError, CredentialMissingError) as refused:
                if not self._may_retry_after_grant(call):
                    raise
                call.renewal_refused = refused
                credential = self._after_grant(call, credential, rejection)

    def _may_retry_after_grant(self, call: _Call) -> bool:
        return not call.grant_retry_used and not self.state.answered_2xx

    def _after_grant(self, call: _Call, credential: Credential, rejection: str) -> Credential:
        """Snowflake's tests treat a 401 right after a grant as transient: wait, renew if possible, send once more.

        A credential that cannot be renewed (a PAT, a direct OAuth token) is sent again as it is.
        """
        call.grant_retry_used = True
        wait = self.retry_settings.grant_401_backoff
        LOG.info("%s still rejects the credential (%s) and has never answered: a new grant may not have reached it "
                 "yet; trying once more in %.0f s", call.display_url, rejection, wait)
        call.retry_reasons.append("401-after-grant")
        self._sleep(wait)
        try:
            renewed = self.tokens.renew(credential)
        except (AuthenticationError, CredentialMissingError):
            return credential
        call.renewals += 1
        return renewed

    def _classify(self, call: _Call, answer: _Answer) -> _Answer:
        status = answer.status
        now = self._clock()
        if 200 <= status < 300:
            self.state.record_success(now)
            return answer
        retryable = status in RETRIED_STATUSES or (
            status == 403
            and self.state.within_deploy_403_window(self._clock(), self.retry_settings.deploy_403_window)
        )
        if not retryable:
            raise error_for_status(call.display_url, status, answer.text, profile=self.profile)
        call.retry_reasons.append(str(status))
        # 502: the proxy is up but the model server is not (yet); 503 on an endpoint that may have suspended, or
        # after a 502 in this call: the ingress waking the service. 429/504 and a warm 503 are overload.
        cold_start = status == 502 or (status == 503 and (call.resuming or not self.state.warm(now)))
        call.resuming = call.resuming or cold_start
        raise RetryableError(
            str(status), status=status, detail=f"HTTP {status} {answer.reason}".strip(), response_text=answer.text,
            retry_after=parse_retry_after(answer.headers.get("Retry-After"), self._wall_clock()),
            cold_start=cold_start,
        )

    def _send(self, call: _Call, credential: Credential) -> _Answer:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream, application/json" if call.stream else "application/json",
            **credential.headers(),
        }
        in_flight = InFlight(self.state)
        call.attempts += 1
        keep_open = False
        try:
            sent = self._clock()
            session = self.state.session
            prepared = session.prepare_request(requests.Request("POST", call.url, headers=headers, data=call.body))
            response = session.send(
                prepared, allow_redirects=False, timeout=(self.endpoint.connect_timeout, self.endpoint.read_timeout),
                **self._environment(prepared.url or call.url, call.stream),
            )
            answer = _Answer(status=response.status_code, reason=response.reason or "", headers=response.headers)
            self.state.limiter.record_answer(  # latency to the headers; a refusal's Retry-After
                in_flight.generation, answer.status, self._clock() - sent, warm=self.state.warm(sent),
                retry_after=parse_retry_after(answer.headers.get("Retry-After"), self._wall_clock()))
            content_type = response.headers.get("Content-Type", "")
            # Inferred: registry services answer one JSON document even when asked to stream (snowflake-ml
            # _openai_chat_wrapper.py ignores `stream`);
            # an SSE answer is expected only from OpenAI-style servers, so both shapes are accepted here.
            if call.stream and 200 <= answer.status < 300 and content_type.startswith("text/event-stream"):
                answer.stream, answer.in_flight, keep_open = response, in_flight, True
                return answer
            answer.content = response.content
            LOG.debug("%s answered HTTP %d", call.display_url, answer.status)
            return answer
        except requests.RequestException as exc:
            failure = failure_for_exception(call.display_url, self.endpoint.host, exc, self.endpoint.read_timeout,
                                            profile=self.profile)
            if isinstance(failure, RetryableError):
                call.retry_reasons.append(failure.reason)
                # Inferred: a refused connection is a resume only from an endpoint known to be a model service (it
                # answered before, or this call saw it resuming); at first contact it is a wrong host or port, and
                # waiting the cold-start budget for it would only delay the error.
                failure.cold_start = failure.cold_start and (call.resuming or self.state.answered_2xx)
                call.resuming = call.resuming or failure.cold_start
            raise failure from None
        finally:
            if not keep_open:
                call.busy_seconds += in_flight.finish()

    def _environment(self, url: str, stream: bool) -> dict[str, Any]:
        """What ``Session.request`` would merge from the environment (proxies, CA bundle), read once per URL.

        ``requests`` reads every environment variable for proxies on each request (about 0.1 ms, twice per request:
        bench/results/fast_embed.md); the process's proxy settings do not change while DSS runs a component, so
        ``Session.merge_environment_settings`` (proxies such as ``HTTPS_PROXY`` and ``NO_PROXY``, the CA bundle from
        ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``) runs here once per URL.
        """
        settings = self._environments.get(url)
        if settings is None:
            settings = self._environments[url] = self.state.session.merge_environment_settings(
                url, {}, None, None, None)
        return {**settings, "stream": stream}

    def _result(self, call: _Call, answer: _Answer) -> CallResult:
        result = CallResult(
            payload=None, status=answer.status, attempts=call.attempts, renewals=call.renewals,
            busy_seconds=call.busy_seconds, elapsed_seconds=self._clock() - call.started,
            retry_reasons=list(call.retry_reasons),
        )
        if answer.stream is not None and answer.in_flight is not None:
            in_flight = answer.in_flight

            def on_close() -> None:
                result.busy_seconds = call.busy_seconds + in_flight.finish()
                result.elapsed_seconds = self._clock() - call.started

            result.events = EventStream(answer.stream, on_close, call.display_url, profile=self.profile)
            return result
        try:
            result.payload = decode_json(answer.content)
        except ValueError:
            raise not_json_error(
                call.display_url, answer.status, answer.headers.get("Content-Type", ""), answer.text,
                profile=self.profile,
            ) from None
        return result
