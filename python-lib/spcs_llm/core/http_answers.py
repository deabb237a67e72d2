"""What an SPCS ingress answer means: auth rejections, and final failures → typed errors.

The answers are the ones Snowflake's registry REST tests meet (``registry_model_deployment_test_base.py``).

Every message carries at most a short, redacted snippet of what the server said, and names the fix.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import requests
import urllib3.exceptions

from spcs_llm.core.backend import PLAIN, BackendProfile
from spcs_llm.core.errors import (
    AuthenticationError,
    BadResponseError,
    EndpointNotFoundError,
    InputTooLongError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServiceResumeTimeoutError,
    ServiceUnavailableError,
    SpcsLlmError,
    TransportError,
)
from spcs_llm.core.redaction import redact
from spcs_llm.core.retry import RetryableError

# Snowflake codes meaning "not authenticated": 390104 user must login again, 390112 session expired,
# 390318 OAuth access token expired (snowflake-connector network.py;
# 390104 in langchain-snowflake issue #38).
AUTH_REJECTION_CODES = frozenset({"390104", "390112", "390318"})
_AUTH_CODE_IN_TEXT = re.compile(r"\b(390104|390112|390318)\b")
_INPUT_TOO_LONG = re.compile(
    r"too long|exceeds? (?:the )?(?:model'?s? )?(?:maximum )?(?:context|sequence length)|context length|"
    r"maximum context|too many tokens|longer than the maximum",
    re.IGNORECASE,
)
_REFUSED_OR_RESET_WORDS = ("connection refused", "connection reset", "errno 111", "errno 104")
_DNS_WORDS = ("name or service not known", "nodename nor servname", "getaddrinfo failed", "failed to resolve",
              "name resolution", "no address associated")
SNIPPET_CHARS = 200
MAX_REJECTION_BODY = 10_000  # Snowflake auth-error bodies are small
READ_TIMEOUT_FIX = (
    "Raise 'Read timeout' (the SPCS ingress allows about 60 s per request), or lower the max output tokens or the "
    "rows per request so that one request finishes sooner."
)


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A redacted, whitespace-collapsed, truncated excerpt of a body, safe for messages."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def looks_like_html(content_type: str, text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return "text/html" in content_type.lower() or head.startswith(("<!doctype html", "<html"))


def not_json_error(url: str, status: int, content_type: str, text: str, *,
                   profile: BackendProfile = PLAIN) -> BadResponseError:
    if looks_like_html(content_type, text):
        lowered = text.lower()
        what = "an HTML login page" if any(w in lowered for w in ("login", "log in", "sign in")) else "an HTML page"
        return profile.error(
            BadResponseError,
            f"{url} answered HTTP {status} with {what} instead of JSON: {snippet(text)!r}.",
            fix="Check that 'Endpoint' is the service's ingress host (not the Snowflake web UI) and that the "
            "credential is accepted by the ingress.",
            status=status,
        )
    return profile.error(
        BadResponseError, f"{url} answered HTTP {status} with a body that is not JSON: {snippet(text)!r}.",
        status=status,
    )


def server_message(text: str) -> str:
    """The server's own error text (``error`` / ``message`` / ``detail``) or a snippet of the body."""
    try:
        body = json.loads(text)
    except ValueError:
        return snippet(text)
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "msg"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("msg") or json.dumps(value)
            if isinstance(value, list):
                value = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in value)
            if value:
                return snippet(str(value))
    return snippet(text)


def auth_rejection(status: int, content: bytes) -> str | None:
    """Why the ingress did not accept the credential, or None. 3xx is an auth answer."""
    if 300 <= status < 400:
        # Inferred (Snowflake docs "service network communications" describe the browser login): a 3xx from the
        # ingress is a redirect to the browser login page.
        return f"a redirect (HTTP {status}) to a login page"
    if status == 401:
        return "HTTP 401"
    if status < 400 and len(content) > MAX_REJECTION_BODY:
        return None  # a large 2xx body is an answer, not a rejection: skip parsing it twice
    if status < 400 and b'"success"' not in content and b"\\u" not in content:
        # A 2xx rejection says "success": false, and JSON can name that key only literally or with \u escapes: an
        # answer with neither is not one, and is not parsed twice (every small answer used to be: one-row
        # embeddings, chat replies).
        return None
    code = _rejection_code(status, content.decode("utf-8", errors="replace"))
    return f"Snowflake code {code}" if code else None


def _rejection_code(status: int, text: str) -> str | None:
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict) and str(body.get("code")) in AUTH_REJECTION_CODES:
        if status >= 400 or body.get("success") is False:
            return str(body.get("code"))
    if status >= 400:
        match = _AUTH_CODE_IN_TEXT.search(text[:MAX_REJECTION_BODY])
        return match.group(1) if match else None
    return None


def authentication_failed(url: str, reason: str, status: int | None, *,
                          profile: BackendProfile = PLAIN) -> AuthenticationError:
    return profile.error(
        AuthenticationError,
        f"{url} did not accept the credential ({reason}), even after renewing it once.", status=status
    )


def error_for_status(url: str, status: int, text: str, *, profile: BackendProfile = PLAIN) -> SpcsLlmError:
    """The typed error for a final, non-retried answer."""
    message = server_message(text)
    said = f" The server said: {message!r}." if message else ""
    if status in (400, 422):
        if _INPUT_TOO_LONG.search(message):
            return profile.error(
                InputTooLongError, f"{url} rejected the input as too long (HTTP {status}).{said}", status=status
            )
        return profile.error(RequestRejectedError, f"{url} rejected the request (HTTP {status}).{said}", status=status)
    if status == 404:
        return profile.error(EndpointNotFoundError, f"{url} was not found (HTTP 404).{said}", status=status)
    if status == 413:
        return profile.error(
            PayloadTooLargeError, f"{url} refused the request body as too large (HTTP 413).", status=status
        )
    if status == 403:
        return profile.error(PermissionDeniedError, f"{url} refused the caller's role (HTTP 403).{said}", status=status)
    if status == 429:
        return profile.error(RateLimitedError, f"{url} is rate limiting (HTTP 429).{said}", status=status)
    if status == 500 and "empty data" in text.lower():
        return profile.error(
            AuthenticationError,
            f"{url} answered HTTP 500 'empty data': the ingress could not resolve the service for this session "
            "token. This happens with session tokens made by a Python-connector login.",
            fix="Use direct OAuth (OAuth mode 'direct'), a PAT or key-pair auth; a session token must be issued with "
            "PYTHON_CONNECTOR_QUERY_RESULT_FORMAT=JSON.",
            status=status,
        )
    if status in (502, 503, 504):
        return profile.error(ServiceUnavailableError, f"{url} is unavailable (HTTP {status}).{said}", status=status)
    if status >= 500:
        return profile.error(
            BadResponseError,
            f"The model service at {url} failed (HTTP {status}).{said}",
            fix="Check the service logs: CALL SYSTEM$GET_SERVICE_LOGS('<service>', '0', 'model-inference').",
            status=status,
        )
    return profile.error(RequestRejectedError, f"{url} answered HTTP {status}.{said}", status=status)


def error_for_exhausted(url: str, failure: RetryableError, attempts: int, elapsed: float, *,
                        profile: BackendProfile = PLAIN) -> SpcsLlmError:
    """The typed error once the retry policy gave up on a transient failure."""
    tried = f"after {attempts} attempt{'s' if attempts != 1 else ''} over {elapsed:.1f} s"
    if failure.status == 403:
        return profile.error(
            PermissionDeniedError,
            f"{url} kept answering HTTP 403 {tried}; routing to a new service takes a minute, after that 403 "
            "means the role may not use the service.",
            status=403,
        )
    if failure.status == 429:
        return profile.error(RateLimitedError, f"{url} kept rate limiting (HTTP 429) {tried}.", status=429)
    if failure.status in (502, 503, 504):
        return profile.error(
            ServiceUnavailableError,
            f"{url} kept answering HTTP {failure.status} {tried}: the service is suspended, resuming or overloaded.",
            status=failure.status,
        )
    if failure.status is not None:
        return error_for_status(url, failure.status, failure.response_text, profile=profile)
    return profile.error(TransportError, f"Could not reach {url} {tried} ({failure.detail}).")


def resume_timed_out(url: str, failure: RetryableError, budget: float, elapsed: float, *,
                     profile: BackendProfile = PLAIN) -> ServiceResumeTimeoutError:
    """The cold-start budget ran out while the service still answered like one that is resuming."""
    last = failure.detail or failure.reason
    return profile.error(
        ServiceResumeTimeoutError,
        f"The service at {url} did not finish resuming within {budget:.0f} s (still {last} after {elapsed:.0f} s).",
        status=failure.status,
    )


def _chain(exc: BaseException) -> Iterator[Any]:
    """The exception, its causes, contexts, reasons and arguments, each once (how requests wraps urllib3/socket)."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, BaseException):
            pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])


def is_refused_or_reset(exc: BaseException) -> bool:
    """True when the host refused or reset the connection: what a resuming service's proxy does (not a timeout)."""
    if any(isinstance(item, (ConnectionRefusedError, ConnectionResetError)) for item in _chain(exc)):
        return True
    return any(word in str(exc).lower() for word in _REFUSED_OR_RESET_WORDS)


def is_read_timeout(exc: BaseException) -> bool:
    """True for a timeout after the request was sent (requests reports some as ConnectionError)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in getattr(exc, "args", ()))


def is_dns_failure(exc: BaseException) -> bool:
    if any(isinstance(item, (socket.gaierror, urllib3.exceptions.NameResolutionError)) for item in _chain(exc)):
        return True
    return any(word in str(exc).lower() for word in _DNS_WORDS)


def failure_for_exception(url: str, host: str, exc: requests.RequestException, read_timeout: float, *,
                          profile: BackendProfile = PLAIN) -> Exception:
    """A ``RetryableError`` for connection failures, else the final typed error (never retried)."""
    if is_read_timeout(exc):
        return profile.error(
            TransportError,
            f"{url} sent no answer within the read timeout of {read_timeout:g} s. The request was not retried "
            "because the generation may already have run.",
            fix=READ_TIMEOUT_FIX,
        )
    if is_dns_failure(exc):
        return profile.error(EndpointNotFoundError, f"The host {host!r} was not found (DNS lookup failed) for {url}.")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ConnectTimeout)):
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return RetryableError("connection", detail=f"connect timeout: {snippet(str(exc), 160)}")
        # Snowflake's tests retry "connection refused" after RUNNING: the proxy is up before the model server.
        cold_start = is_refused_or_reset(exc)
        kind = "connection refused or reset" if cold_start else "connection error"
        return RetryableError("connection", detail=f"{kind}: {snippet(str(exc), 160)}", cold_start=cold_start)
    return profile.error(
        TransportError, f"The request to {url} failed: {type(exc).__name__}: {snippet(str(exc), 160)}."
    )
