"""A small stand-in for the part of DSS that hosts LLM components — for the demo and the tests, not for DSS.

``dataiku.llm.python`` ships only inside DSS (Dataiku developer guide, "Creating a custom LLM Connection"), so
this registers minimal base classes under that name, imports ``python-llms/<id>/llm.py`` from its path as DSS
does, instantiates the one ``BaseLLM``/``BaseEmbeddingModel`` subclass it defines, and calls
``set_config(config, plugin_config)``.
When the real ``dataiku`` package is importable (inside DSS), it is left alone.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from pathlib import Path
from typing import Any

PLUGIN_ROOT = Path(__file__).resolve().parents[2]


class BaseLLM:
    """Stand-in for dataiku.llm.python.BaseLLM: DSS calls __init__(), set_config(), then process*()."""


class BaseEmbeddingModel:
    """Stand-in for dataiku.llm.python.BaseEmbeddingModel."""


def install_fake_dataiku() -> None:
    """Register the stand-in base classes as ``dataiku.llm.python`` unless a real or stand-in one is there."""
    if "dataiku.llm.python" in sys.modules:
        return
    dataiku = types.ModuleType("dataiku")
    llm = types.ModuleType("dataiku.llm")
    python = types.ModuleType("dataiku.llm.python")
    python.BaseLLM = BaseLLM
    python.BaseEmbeddingModel = BaseEmbeddingModel
    dataiku.llm = llm
    llm.python = python
    sys.modules.update({"dataiku": dataiku, "dataiku.llm": llm, "dataiku.llm.python": python})


def load_component(component_id: str, config: dict[str, Any], plugin_config: dict[str, Any] | None = None) -> Any:
    """Import python-llms/<component_id>/llm.py as DSS would and return a configured instance."""
    install_fake_dataiku()
    path = PLUGIN_ROOT / "python-llms" / component_id / "llm.py"
    spec = importlib.util.spec_from_file_location(f"dss_component_{component_id.replace('-', '_')}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"No LLM component at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    python = sys.modules["dataiku.llm.python"]
    bases = tuple(getattr(python, name) for name in ("BaseLLM", "BaseEmbeddingModel") if hasattr(python, name))
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, bases) and c not in bases]
    if len(classes) != 1:
        raise TypeError(f"{path} must define exactly one LLM component class, found {classes}")
    instance = classes[0]()
    instance.set_config(config, plugin_config or {})
    return instance


class DssOAuthCredential:
    """What DSS does for a per-user OAUTH2 credential request: the authorization-code flow (with PKCE) against
    the account's /oauth/authorize and /oauth/token-request, then refreshes (as Snowflake-Labs
    spcs-templates ``external_browser_demo.py`` runs Snowflake OAuth). The plugin only
    ever sees the resulting access token, as ``config["oauth_preset"]["snowflake_oauth"]``.
    """

    def __init__(self, account_url: str, client_id: str, client_secret: str, redirect_uri: str, scope: str):
        from requests_oauthlib import OAuth2Session

        self.account_url = account_url.rstrip("/")
        self.client_secret = client_secret
        self.session = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=scope.split(), pkce="S256")
        self.token: dict[str, Any] = {}

    def authorize(self) -> str:
        """Run the browser part (the stand-in approves its local user at once) and fetch the first tokens."""
        import os

        import requests
        from requests.auth import HTTPBasicAuth

        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the local stand-in speaks plain HTTP
        url, _state = self.session.authorization_url(f"{self.account_url}/oauth/authorize")
        answer = requests.get(url, allow_redirects=False, timeout=10)
        if answer.status_code != 302:
            raise RuntimeError(f"Authorization was not granted: HTTP {answer.status_code}")
        self.token = self.session.fetch_token(
            f"{self.account_url}/oauth/token-request",
            authorization_response=answer.headers["Location"],
            auth=HTTPBasicAuth(self.session.client_id, self.client_secret),
            include_client_id=False,
            timeout=10,
        )
        return self.access_token

    def refresh(self) -> str:
        import os

        from requests.auth import HTTPBasicAuth

        # A refresh answer need not repeat the `refresh_token` scope (it only asked for a refresh token); DSS
        # accepts such answers, while oauthlib raises on any scope change unless told to relax (inferred for DSS).
        os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
        self.token = self.session.refresh_token(
            f"{self.account_url}/oauth/token-request",
            refresh_token=self.token["refresh_token"],
            auth=HTTPBasicAuth(self.session.client_id, self.client_secret),
            timeout=10,
        )
        return self.access_token

    @property
    def access_token(self) -> str:
        return str(self.token["access_token"])
