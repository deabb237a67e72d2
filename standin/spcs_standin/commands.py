"""What ``spcs-llm local`` runs: the stand-in in the foreground and print what to use it with: a ready PAT, the exact
``spcs-llm doctor`` commands to check it, and the DSS settings to paste (labelled as the DSS forms label them).

Registering the command imports nothing beyond the standard library and the plugin's own light modules: the
stand-in's packages (starlette, uvicorn, torch, ...) are checked and imported only when it runs, so ``spcs-llm``
works in the plugin's and the notebooks' environments, where ``spcs-llm local`` names what to install."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import sys
import threading
from typing import TYPE_CHECKING

from spcs_llm.core.errors import SpcsLlmError
from spcs_llm.dss.labels import (
    CHAT_COMPONENT,
    EMBEDDING_COMPONENT,
    OAUTH_PRESET,
    SERVICE_PRESET,
    component_form,
    preset_form,
)
from spcs_standin.quiet import quiet_libraries
from spcs_standin.settings import ADMIN_SECRET_ENV, StandinSettings, settings_from_args

if TYPE_CHECKING:
    from spcs_standin.server import ReadyInfo

TOKEN_ENV = "SNOWFLAKE_TOKEN"  # the variable `spcs-llm doctor` reads the token from by default
# What each kind of stand-in service is, in the plugin's model settings (the protocol DSS must be told).
SERVICE_SETTINGS: dict[str, tuple[str, dict[str, str]]] = {
    "openai_chat": (CHAT_COMPONENT, {"route": "__call__", "protocol": "openai_chat"}),
    # The tiny model answers in every family's layout; Zephyr is its own.
    "text_generation": (CHAT_COMPONENT, {"route": "__call__", "protocol": "text_generation",
                                         "model_family": "zephyr"}),
    "encode": (EMBEDDING_COMPONENT, {"route": "encode", "protocol": "encode"}),
    "custom_predict": (EMBEDDING_COMPONENT, {"route": "predict", "protocol": "predict"}),
}




def run_local(args: argparse.Namespace) -> int:
    from spcs_standin.server import serve

    quiet_libraries(getattr(args, "verbose", False))
    # Without a secret chosen by the user the control API stays closed to everyone (it is never printed).
    admin_secret = os.environ.setdefault(ADMIN_SECRET_ENV, secrets.token_urlsafe(24))
    settings = settings_from_args(args)

    def announce(ready_line: str) -> None:
        # The server answers the PAT request only once this callback returns: ask from another thread.
        threading.Thread(target=print_welcome, args=(settings, ready_line, admin_secret), daemon=True).start()

    try:
        asyncio.run(serve(settings, announce=announce))
    except KeyboardInterrupt:
        pass
    return 0


def print_welcome(settings: StandinSettings, ready_line: str, admin_secret: str) -> None:
    """Mint a PAT through the stand-in's control API, then print it with the doctor commands and DSS settings."""
    from spcs_standin.stack import LocalStack

    pat = None
    try:
        stack = LocalStack.attach(ready_line, admin_secret)
        pat = stack.issue_pat()
        stack.stop()
    except SpcsLlmError as failure:
        print(f"The stand-in is running, but no PAT could be issued: {failure}", file=sys.stderr, flush=True)
    print(running_line(ready_line), dss_settings_text(settings, ready_line, pat), sep="\n", flush=True)


def _ready_info(ready_line: str) -> ReadyInfo:
    from spcs_standin.server import ReadyInfo

    return ReadyInfo(**{k: v for k, v in json.loads(ready_line).items() if k != "event"})


def running_line(ready_line: str) -> str:
    """The first line ``spcs-llm local`` prints, in words: what runs and where (the ready line follows it)."""
    ready = _ready_info(ready_line)
    services = ", ".join(f"{name} {url}" for name, url in ready.services.items())
    return (f"Local Snowflake + SPCS stand-in running on 127.0.0.1 (Ctrl-C to stop): account {ready.account_url}; "
            f"services {services}. Its ready line, for scripts:")


def doctor_commands(settings: StandinSettings, ready: ReadyInfo) -> list[str]:
    """The ``spcs-llm doctor`` command lines that check the chat and embedding services the way DSS calls them."""
    common = ["--auth", "pat", "--account-url", ready.account_url, "--role", settings.role]
    commands = []
    for service, extra in (("chat", []), ("embed", ["--kind", "embed"])):
        if service in ready.services:
            commands.append(shlex.join(["spcs-llm", "doctor", "--endpoint", ready.services[service], *extra, *common]))
    return commands


def dss_settings_text(settings: StandinSettings, ready_line: str, pat: str | None = None) -> str:
    """The ready line (for scripts); the PAT and the doctor commands; then what to paste into DSS: the presets and
    the models; last, the control API."""
    ready = _ready_info(ready_line)
    lines = [ready_line]
    if pat:
        days = settings.lifetimes.pat / 86_400
        lines += ["", f"A PAT for {settings.user} with role {settings.role} (valid {days:g} days), ready to use:",
                  f"    export {TOKEN_ENV}={shlex.quote(pat)}",
                  "Check the services the way DSS will call them:",
                  *(f"    {command}" for command in doctor_commands(settings, ready))]
    oauth, service_account = preset_form(OAUTH_PRESET), preset_form(SERVICE_PRESET)
    account = {"account_url": ready.account_url, "account_identifier": settings.account}
    lines += ["", "DSS settings (presets under Plugins → spcs-llm → Settings; models in a Custom LLM connection):",
              f"  Preset '{oauth.title}':", *oauth.lines({
                  **account,
                  "authorizationEndpoint": f"{ready.account_url}/oauth/authorize",
                  "tokenEndpoint": f"{ready.account_url}/oauth/token-request",
                  "scope": f"refresh_token session:role:{settings.role}",
                  "role": settings.role,
                  "snowflake_oauth": f"client id {settings.oauth_client_id}, client secret "
                                     f"{settings.oauth_client_secret} (redirect URI {settings.oauth_redirect_uri})",
              }),
              f"  Preset '{service_account.title}':", *service_account.lines({
                  "service_auth": "pat", **account, "user": settings.user, "role": settings.role,
                  "pat": "the PAT above" if pat else "issue one through the control API",
              }),
              "  Models, one per service:", *_service_lines(settings, ready),
              f"Control API: {ready.account_url}/__local__/ with header X-Local-Admin-Secret = the value of "
              f"${ADMIN_SECRET_ENV} (set it before starting to use the control API)."]
    return "\n".join(lines)


def _service_lines(settings: StandinSettings, ready: ReadyInfo) -> list[str]:
    """Two lines per service: the model type to add in DSS with its endpoint, then the settings it needs, labelled
    as DSS shows them."""
    out = []
    for name, url in ready.services.items():
        component, values = SERVICE_SETTINGS[settings.service(name).kind]
        form = component_form(component)
        out.append(f"    {name} — a '{form.title}' with {form.label('endpoint')}: {url}")
        shown = (f"{form.label(key)}: {form.shown(key, value)}" for key, value in values.items())
        out.append("        " + " · ".join(shown))
    return out
