"""Run the stand-in: one uvicorn server, one 127.0.0.1 socket per host (account + one per service).

A single server listening on several sockets dispatches by local port, so every emulated host has its own
port (as each SPCS service has its own ingress host) while sharing one event loop and one credential store.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger, register_secret
from spcs_standin.account import AccountApp
from spcs_standin.admin import AdminApp
from spcs_standin.cortex_access import CortexAccess
from spcs_standin.cortex_admin import CortexAdminApp
from spcs_standin.cortex_app import CortexApp
from spcs_standin.credentials import CredentialStore
from spcs_standin.faults import ServiceState
from spcs_standin.inference import ModelRuntime
from spcs_standin.ingress import IngressApp, reset_connection
from spcs_standin.settings import StandinSettings

log = get_logger(__name__)
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ReadyInfo:
    """What the ready line announces (one JSON object on stdout)."""

    account_url: str
    services: dict[str, str]
    pid: int

    def to_json(self) -> str:
        return json.dumps({"event": "ready", "account_url": self.account_url, "services": self.services,
                           "pid": self.pid})


def _bind(port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off only on sockets whose proto says TCP, and with
    # Nagle on, a response written as head then body waits out the client's delayed ACK (40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class PortDispatcher:
    """ASGI app routing each connection to the app of the port it arrived on."""

    def __init__(self, apps: dict[int, Any]) -> None:
        self.apps = apps

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return
        await self.apps[scope["server"][1]](scope, receive, send)


def _protocol_class(transports: dict[Any, asyncio.Transport],
                    states_by_port: dict[int, ServiceState]) -> type[H11Protocol]:
    """uvicorn's h11 protocol, remembering each connection's transport so a fault can drop it unanswered, and
    resetting new connections to a service in a "refuse" resume phase."""

    class DroppableH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            state = states_by_port.get(self.server[1]) if self.server else None
            if state is not None and state.resume_answer() == "refuse":
                state.stats.refused += 1
                reset_connection(transport)
                return
            transports[self.client] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            transports.pop(self.client, None)
            super().connection_lost(exc)

    return DroppableH11Protocol


async def serve(settings: StandinSettings, announce: Callable[[str], None] = print) -> None:
    """Bind, load what must be preloaded, announce readiness, and serve until cancelled or signalled."""
    if settings.host != LOOPBACK:
        raise ConfigurationError("The stand-in binds 127.0.0.1 only.", fix="Drop the host override.")
    if not settings.admin_secret:
        raise ConfigurationError("No admin secret was given.", fix="Set SPCS_LLM_LOCAL_ADMIN_SECRET before starting.")
    register_secret(settings.admin_secret)
    register_secret(settings.oauth_client_secret)
    credentials = CredentialStore(settings.account)
    runtime = ModelRuntime(dict(settings.adapters))
    states = {spec.name: ServiceState(spec, settings.role, settings.seed) for spec in settings.services}
    transports: dict[Any, asyncio.Transport] = {}
    account_sock = _bind(settings.account_port)
    service_socks = {name: _bind(0) for name in states}
    cortex_access = CortexAccess(credentials, settings.role, settings.lifetimes.keypair_jwt_max)
    cortex = CortexApp(cortex_access)
    account = Starlette(routes=AccountApp(settings, credentials).routes()
                        + AdminApp(settings, credentials, states).routes()
                        + cortex.routes() + CortexAdminApp(settings.admin_secret, cortex_access).routes())
    ingresses = {name: IngressApp(state, credentials, runtime, transports) for name, state in states.items()}
    apps: dict[int, Any] = {account_sock.getsockname()[1]: account}
    apps.update({service_socks[name].getsockname()[1]: app for name, app in ingresses.items()})

    states_by_port = {service_socks[name].getsockname()[1]: state for name, state in states.items()}
    await asyncio.get_running_loop().run_in_executor(None, runtime.preload, settings.preload)
    config = uvicorn.Config(PortDispatcher(apps), lifespan="off", log_level="warning", access_log=False,
                            http=_protocol_class(transports, states_by_port), timeout_keep_alive=30)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[account_sock, *service_socks.values()]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        announce(ReadyInfo(
            account_url=f"http://{LOOPBACK}:{account_sock.getsockname()[1]}",
            services={name: f"http://{LOOPBACK}:{sock.getsockname()[1]}" for name, sock in service_socks.items()},
            pid=os.getpid(),
        ).to_json())
    try:
        await serving
    finally:
        for app in ingresses.values():
            app.close()
        cortex.close()
