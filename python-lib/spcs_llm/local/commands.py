"""``spcs-llm local``: run the stand-in in the foreground and print the URLs and DSS settings to paste."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from typing import Any

from .server import ReadyInfo, serve
from .settings import ADMIN_SECRET_ENV, StandinSettings, add_arguments, settings_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="run the local Snowflake + SPCS stand-in (127.0.0.1 only)")
    add_arguments(parser)
    parser.set_defaults(handler=run_local)


def run_local(args: argparse.Namespace) -> int:
    # Without a secret chosen by the user the control API stays closed to everyone (it is never printed).
    os.environ.setdefault(ADMIN_SECRET_ENV, secrets.token_urlsafe(24))
    settings = settings_from_args(args)
    try:
        asyncio.run(serve(settings, announce=lambda line: print(dss_settings_text(settings, line), flush=True)))
    except KeyboardInterrupt:
        pass
    return 0


def dss_settings_text(settings: StandinSettings, ready_line: str) -> str:
    """The ready line, then what to paste into DSS (the OAuth integration and the models' endpoints)."""
    ready = ReadyInfo(**{k: v for k, v in json.loads(ready_line).items() if k != "event"})
    services = "\n".join(f"    {name:15s} {url}" for name, url in ready.services.items())
    return f"""{ready_line}

Local Snowflake + SPCS stand-in is running (Ctrl-C to stop).

Snowflake account URL:   {ready.account_url}
OAuth (DSS credential preset, Snowflake OAuth):
    authorization endpoint  {ready.account_url}/oauth/authorize
    token endpoint          {ready.account_url}/oauth/token-request
    client id               {settings.oauth_client_id}
    client secret           {settings.oauth_client_secret}
    redirect URI            {settings.oauth_redirect_uri}
    scope                   refresh_token session:role:{settings.role}
User / role:             {settings.user} / {settings.role}
Service endpoints (ingress base URLs):
{services}
  chat: route __call__ (OpenAI chat) · embed: route encode · textgen: route __call__ (text generation)
Control API: {ready.account_url}/__local__/ with header X-Local-Admin-Secret = the value of ${ADMIN_SECRET_ENV}
  (set it before starting to use the control API)."""
