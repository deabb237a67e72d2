"""Control routes for the stand-in's Cortex endpoints, under ``/__local__/cortex/`` (never part of Snowflake).

Like the other control routes they need the ``X-Local-Admin-Secret`` header. They set, per user, whether the
user's default role holds SNOWFLAKE.CORTEX_USER (403 otherwise), per model a rate limit (429 with Retry-After),
and read or reset the counters.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spcs_standin.admin import ADMIN_HEADER, BAD_REQUEST_FIX, WRONG_SECRET_FIX, refusal
from spcs_standin.cortex_access import CortexAccess, RateLimit
from spcs_standin.cortex_engines import CORTEX_MODELS

Handler = Callable[[Request], Awaitable[Response]]


class CortexAdminApp:
    def __init__(self, admin_secret: str, access: CortexAccess) -> None:
        self.admin_secret = admin_secret
        self.access = access

    def routes(self) -> list[Route]:
        guarded = self._guarded
        return [
            Route("/__local__/cortex", guarded(self.reset), methods=["DELETE"]),
            Route("/__local__/cortex/stats", guarded(self.stats), methods=["GET", "DELETE"]),
            Route("/__local__/cortex/pace", guarded(self.pace), methods=["POST"]),
            Route("/__local__/cortex/users/{user}", guarded(self.cortex_user), methods=["POST"]),
            Route("/__local__/cortex/models/{model}/rate-limit", guarded(self.rate_limit), methods=["POST", "DELETE"]),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            given = request.headers.get(ADMIN_HEADER, "")
            if not self.admin_secret or not secrets.compare_digest(given, self.admin_secret):
                return refusal(403, "Missing or wrong X-Local-Admin-Secret.", WRONG_SECRET_FIX)
            try:
                return await handler(request)
            except (ValueError, TypeError, KeyError) as exc:
                return refusal(400, f"Bad control request: {type(exc).__name__}: {exc}", BAD_REQUEST_FIX)

        return run

    async def reset(self, request: Request) -> Response:
        self.access.reset()
        return JSONResponse({"reset": True})

    async def stats(self, request: Request) -> Response:
        answer = self.access.stats.as_dict()
        if request.method == "DELETE":
            self.access.stats = type(self.access.stats)()
        return JSONResponse(answer)

    async def pace(self, request: Request) -> Response:
        """Body ``{"token_delay_s": s}``: pause this long after each generated piece (0 = as fast as the CPU)."""
        delay = float((await request.json())["token_delay_s"])
        if not 0 <= delay <= 5:
            raise ValueError("token_delay_s must be between 0 and 5 seconds")
        self.access.token_delay_s = delay
        return JSONResponse({"token_delay_s": delay})

    async def cortex_user(self, request: Request) -> Response:
        """Body ``{"cortex_user": false}``: the user's default role loses SNOWFLAKE.CORTEX_USER (true gives it back)."""
        user = request.path_params["user"].upper()
        granted = (await request.json())["cortex_user"]
        if not isinstance(granted, bool):
            raise ValueError("cortex_user must be true or false")
        if granted:
            self.access.users_without_cortex_user.discard(user)
        else:
            self.access.users_without_cortex_user.add(user)
        return JSONResponse({"users_without_cortex_user": sorted(self.access.users_without_cortex_user)})

    async def rate_limit(self, request: Request) -> Response:
        """Body ``{"requests": n, "window_s": s}`` (POST) sets the model's limit; DELETE lifts it."""
        model = request.path_params["model"]
        if model not in CORTEX_MODELS:
            raise KeyError(f"no Cortex model {model!r}; use one of {sorted(CORTEX_MODELS)}")
        if request.method == "DELETE":
            self.access.rate_limits.pop(model, None)
            return JSONResponse({"model": model, "rate_limit": None})
        body = await request.json()
        limit = RateLimit(int(body["requests"]), float(body.get("window_s", 60.0)))
        if limit.requests < 1 or limit.window_s <= 0:
            raise ValueError("requests must be ≥ 1 and window_s > 0")
        self.access.rate_limits[model] = limit
        return JSONResponse({"model": model, "rate_limit": {"requests": limit.requests, "window_s": limit.window_s}})
