"""Control routes under ``/__local__/`` on the account port, for tests and benchmarks (never part of Snowflake).

Every route needs the ``X-Local-Admin-Secret`` header carrying the secret handed to the process at start-up.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spcs_llm.core.errors import ConfigurationError
from spcs_standin.credentials import CredentialStore, TokenKind
from spcs_standin.faults import ServiceState
from spcs_standin.settings import ResumePhase, StandinSettings

ADMIN_HEADER = "x-local-admin-secret"
WRONG_SECRET_FIX = "Send the admin secret from the stand-in's ready line (LocalStack.attach(ready_line, admin_secret))."
BAD_REQUEST_FIX = ("Send the fields this control route takes (its handler in spcs_standin/admin.py or cortex_admin.py; "
                   "fault knobs: spcs_standin.faults.FaultKnobs).")


def refusal(status: int, error: str, fix: str) -> JSONResponse:
    """A refused control request: what was wrong and its fix, which the control client (``stack.py``) shows."""
    return JSONResponse({"error": error, "fix": fix}, status_code=status)
Handler = Callable[[Request], Awaitable[Response]]


class AdminApp:
    def __init__(self, settings: StandinSettings, credentials: CredentialStore,
                 services: dict[str, ServiceState]) -> None:
        self.settings = settings
        self.credentials = credentials
        self.services = services

    def routes(self) -> list[Route]:
        guarded = self._guarded
        return [
            Route("/__local__/health", guarded(self.health), methods=["GET"]),
            Route("/__local__/pat", guarded(self.issue_pat), methods=["POST"]),
            Route("/__local__/oauth-token", guarded(self.issue_oauth_token), methods=["POST"]),
            Route("/__local__/public-key", guarded(self.register_public_key), methods=["POST"]),
            Route("/__local__/faults", guarded(self.reset_faults), methods=["DELETE"]),
            Route("/__local__/services/{service}/faults", guarded(self.set_faults), methods=["POST"]),
            Route("/__local__/services/{service}/stats", guarded(self.stats), methods=["GET", "DELETE"]),
            Route("/__local__/services/{service}/cold-start", guarded(self.cold_start), methods=["POST"]),
            Route("/__local__/services/{service}/suspend", guarded(self.suspend), methods=["POST"]),
            Route("/__local__/services/{service}/grants", guarded(self.grants), methods=["POST", "DELETE"]),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            given = request.headers.get(ADMIN_HEADER, "")
            if not self.settings.admin_secret or not secrets.compare_digest(given, self.settings.admin_secret):
                return refusal(403, "Missing or wrong X-Local-Admin-Secret.", WRONG_SECRET_FIX)
            try:
                return await handler(request)
            except ConfigurationError as exc:
                return refusal(400, exc.message, exc.fix)
            except (ValueError, TypeError, KeyError) as exc:
                return refusal(400, f"Bad control request: {type(exc).__name__}: {exc}", BAD_REQUEST_FIX)

        return run

    def _service(self, request: Request) -> ServiceState:
        name = request.path_params["service"]
        if name not in self.services:
            raise ConfigurationError(f"No service named {name!r}.", fix=f"Use one of {sorted(self.services)}.")
        return self.services[name]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    async def issue_pat(self, request: Request) -> Response:
        """Like ``ALTER USER u ADD PROGRAMMATIC ACCESS TOKEN t ROLE_RESTRICTION='R'`` (Snowflake's PAT SQL)."""
        body = await _json(request)
        user, role = self._identity(body)
        ttl = float(body.get("ttl") or self.settings.lifetimes.pat)
        return JSONResponse({"token": self.credentials.issue(TokenKind.PAT, user, role, ttl)})

    async def issue_oauth_token(self, request: Request) -> Response:
        """An OAuth access token without the browser dance (a test shortcut)."""
        body = await _json(request)
        user, role = self._identity(body)
        ttl = float(body.get("ttl") or self.settings.lifetimes.oauth_access)
        token = self.credentials.issue(TokenKind.OAUTH_ACCESS, user, role, ttl, scope=(f"session:role:{role}",))
        return JSONResponse({"access_token": token, "expires_in": ttl})

    async def register_public_key(self, request: Request) -> Response:
        body = await _json(request)
        fingerprint = self.credentials.register_public_key(str(body["user"]), str(body["pem"]))
        return JSONResponse({"fingerprint": fingerprint})

    async def set_faults(self, request: Request) -> Response:
        knobs = self._service(request).set_faults(**await _json(request))
        return JSONResponse(knobs.__dict__)

    async def reset_faults(self, request: Request) -> Response:
        for state in self.services.values():
            state.reset_faults()
        return JSONResponse({"reset": sorted(self.services)})

    async def stats(self, request: Request) -> Response:
        state = self._service(request)
        if request.method == "DELETE":
            state.reset_stats()
        return JSONResponse(state.stats.as_dict())

    async def cold_start(self, request: Request) -> Response:
        body = await _json(request)
        self._service(request).set_cold_start(float(body["seconds"]))
        return JSONResponse({"cold_for_s": float(body["seconds"])})

    async def suspend(self, request: Request) -> Response:
        """Suspend a service; body ``{"phases": [{"answer": 502 | 503 | "refuse", "seconds": s}, ...]}``."""
        given = (await _json(request))["phases"]
        phases = tuple(ResumePhase(phase["answer"], float(phase["seconds"])) for phase in given)
        self._service(request).suspend(phases)
        return JSONResponse({"suspended": True, "phases": [{"answer": p.answer, "seconds": p.seconds} for p in phases]})

    async def grants(self, request: Request) -> Response:
        """``GRANT/REVOKE SERVICE ROLE <svc>!ALL_ENDPOINTS_USAGE ... ROLE r`` (sfc-gh-bhess/ex_spcs_token notebook)."""
        state = self._service(request)
        role = str((await _json(request))["role"]).upper()
        if request.method == "POST":
            state.granted_roles.add(role)
        else:
            state.granted_roles.discard(role)
        return JSONResponse({"granted_roles": sorted(state.granted_roles)})

    def _identity(self, body: dict[str, Any]) -> tuple[str, str]:
        return str(body.get("user") or self.settings.user).upper(), str(body.get("role") or self.settings.role).upper()


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
