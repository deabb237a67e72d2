"""The SPCS ingress in front of one model service: authentication, role check, faults, capacity, dispatch.

A raw ASGI app (no router) keeps the per-request overhead small; the model work runs in the service's own
thread pool, whose size is the emulated worker/instance count.
"""

from __future__ import annotations

import asyncio
import html
import json
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from spcs_llm.core.redaction import get_logger
from spcs_standin.credentials import CredentialStore, TokenKind, TokenRecord, snowflake_token
from spcs_standin.faults import ServiceState
from spcs_standin.inference import ModelRuntime

log = get_logger(__name__)

OAUTH_METHOD_HEADER = "x-sf-spcs-authentication-method"
LOGIN_PATH = "/sfc-endpoint/login"
LOGOUT_PATH = "/sfc-endpoint/logout"
_ACCEPTED_KINDS = {TokenKind.OAUTH_ACCESS, TokenKind.SESSION, TokenKind.EXCHANGED, TokenKind.PAT}
_FORCED_EXPIRY_KINDS = {TokenKind.SESSION, TokenKind.EXCHANGED}
# Inferred: code 390104 and this wording follow langchain-snowflake issue #38 (a 401 with 390104 "User must login
# again"); Snowflake's own material says only that a 401 means a bad, expired or missing token.
_LOGIN_AGAIN = {"code": "390104", "message": "User must login again to access the service."}
_LOGIN_PAGE = """<!DOCTYPE html>
<html><head><title>Snowflake - Sign in</title></head>
<body><h1>Sign in to Snowflake</h1>
<p>This endpoint needs a Snowflake login. Programmatic clients must send
<code>Authorization: Snowflake Token="..."</code>.</p>
<p>Requested: <code>{target}</code></p></body></html>"""


# Inferred: the body of the SPCS proxy's 502 while the model server loads is not documented; the stricter reading
# is a proxy's HTML page, not JSON, so a client must not expect to parse it.
_BAD_GATEWAY_PAGE = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                     "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")


class DropConnection(Exception):  # noqa: N818 - not an error: the fault injector's order to hang up
    """Raised to close the client's socket without any response (fault injection)."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__()
        self.reset = reset


def reset_connection(transport: asyncio.BaseTransport) -> None:
    """Close a connection with a TCP reset (SO_LINGER 0), as a peer with nothing listening would."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class IngressApp:
    """ASGI app for one service's ingress port."""

    def __init__(self, state: ServiceState, credentials: CredentialStore, runtime: ModelRuntime,
                 transports: dict[Any, asyncio.Transport]) -> None:
        self.state = state
        self.credentials = credentials
        self.runtime = runtime
        self.transports = transports
        self.routes = runtime.routes(state.spec)
        self.pool = ThreadPoolExecutor(max_workers=state.spec.workers, thread_name_prefix=f"svc-{state.spec.name}")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        self.state.stats.requests += 1
        network_latency_ms = self.state.knobs.network_latency_ms
        if network_latency_ms:  # the hop from the caller to SPCS and back: waits before the ingress, holds no slot
            await asyncio.sleep(network_latency_ms / 1000)
        try:
            response = await self._respond(request)
        except DropConnection as drop:
            transport = self.transports.get(scope.get("client"))
            if drop.reset:
                self.state.stats.refused += 1
                if transport is not None:
                    reset_connection(transport)
            else:
                self.state.stats.dropped += 1
                if transport is not None:
                    transport.abort()
            await asyncio.sleep(0)  # let uvicorn see the disconnect, so it sends nothing either
            return
        self.state.stats.statuses[response.status_code] += 1
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        knobs = self.state.knobs
        if self.state.draw(knobs.rate_drop):
            raise DropConnection()
        resuming = self.state.resume_answer()
        if resuming == "refuse":  # a kept-alive connection meets the same refusal as a new one
            raise DropConnection(reset=True)
        path = request.url.path
        if path == LOGIN_PATH or path == LOGOUT_PATH:
            target = html.escape(request.query_params.get("redirect_uri", "/"))
            return HTMLResponse(_LOGIN_PAGE.format(target=target))
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        # registry_model_deployment_test_base.py: after RUNNING the proxy answers 502 until the model has loaded.
        if resuming == 502:
            return HTMLResponse(_BAD_GATEWAY_PAGE, status_code=502)
        # 503 while the service is starting or resuming from min_instances=0 (retried by
        # registry_model_deployment_test_base.py).
        if resuming == 503 or self.state.cold() or self.state.draw(knobs.rate_503):
            return JSONResponse({"error": "Service is starting, please retry."}, status_code=503)
        if self.state.draw(knobs.rate_429):
            return _too_many(knobs.retry_after_s)
        method = self.routes.get(path)
        if method is None:
            # Inferred: the ingress's answer for an unknown method route is not documented.
            return JSONResponse({"error": f"Unknown route {path}; this service serves {sorted(self.routes)}."}, 404)
        if request.method != "POST":
            return JSONResponse({"error": f"{path} accepts POST only."}, status_code=405)
        # {"error": "Too many requests"} once in-flight requests exceed the cap (snowflake-ml 1.6.2
        # _deploy_client/image_builds/inference_server/main.py, _CONCURRENT_REQUESTS_MAX).
        if self.state.stats.in_flight >= self.state.spec.capacity:
            return _too_many(None)
        self.state.stats.in_flight += 1
        self.state.stats.max_in_flight = max(self.state.stats.max_in_flight, self.state.stats.in_flight)
        try:
            if knobs.latency_ms:  # added service time: it holds a capacity slot, like a slower model would
                await asyncio.sleep(knobs.latency_ms / 1000)
            body = await request.body()
            result = await asyncio.get_running_loop().run_in_executor(
                self.pool, self.runtime.handle, self.state.spec, method, body
            )
        finally:
            self.state.stats.in_flight -= 1  # read afresh: stats may have been reset meanwhile
        stats = self.state.stats
        if result.status == 200:
            stats.rows += result.rows
            stats.model_calls += 1
            stats.max_rows_per_call = max(stats.max_rows_per_call, result.rows)
        return Response(result.body, status_code=result.status, media_type="application/json")

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None:
            # Inferred from Snowflake docs "service network communications" (browser login): requests without
            # credentials get the interactive web login (302).
            target = quote(request.url.path)
            return RedirectResponse(f"{request.base_url}{LOGIN_PATH.lstrip('/')}?redirect_uri={target}", 302)
        token = snowflake_token(header)
        record = self.credentials.lookup(token) if token else None
        # 401 for a bad or expired token (Snowflake-Labs spcs-templates spcs-ingress-auth/token_demo.py).
        if record is None or record.kind not in _ACCEPTED_KINDS or self._expired(record):
            log.info("401 on %s (Authorization scheme %r)", request.url.path, header.split(" ", 1)[0])
            return JSONResponse(_LOGIN_AGAIN, status_code=401)
        # Snowflake-Labs spcs-templates spcs-ingress-auth/external_browser_demo.py: an OAuth access token is
        # accepted only together with X-SF-SPCS-Authentication-Method: OAUTH.
        if record.kind is TokenKind.OAUTH_ACCESS and request.headers.get(OAUTH_METHOD_HEADER, "").upper() != "OAUTH":
            return JSONResponse(_LOGIN_AGAIN, status_code=401)
        # Callers need a role holding <svc>!ALL_ENDPOINTS_USAGE (sfc-gh-bhess/ex_spcs_token notebook); 403
        # otherwise (inferred).
        if record.role not in self.state.granted_roles:
            return JSONResponse(
                {"message": f"Role {record.role} is not authorized to use this service endpoint."},
                status_code=403,
            )
        return None

    def _expired(self, record: TokenRecord) -> bool:
        forced = self.state.knobs.token_expiry_s
        if forced and record.kind in _FORCED_EXPIRY_KINDS and time.time() - record.issued_at >= forced:
            return True
        return record.expired()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _too_many(retry_after: int | None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(json.dumps({"error": "Too many requests"}), status_code=429, media_type="application/json",
                    headers=headers)
