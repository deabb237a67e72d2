"""Integration fixtures: one local SPCS stand-in per test session, with both real models loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spcs_standin.stack import LocalStack


@pytest.fixture(scope="session")
def standin_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in's stderr, so tests can assert that no secret ever reaches its log."""
    return tmp_path_factory.mktemp("standin") / "stderr.log"


@pytest.fixture(scope="session")
def local_stack(standin_log: Path) -> Iterator[LocalStack]:
    with LocalStack.start(
        preload=("chat", "embed"), workers=1, queue_size=2, stderr_path=standin_log, extra_args=("--verbose",)
    ) as stack:
        yield stack


def _snowflake_auth(token: str, *, oauth: bool = False) -> dict[str, str]:
    headers = {"Authorization": f'Snowflake Token="{token}"'}
    if oauth:
        headers["X-SF-SPCS-Authentication-Method"] = "OAUTH"
    return headers


@pytest.fixture(scope="session")
def snowflake_auth() -> Callable[..., dict[str, str]]:
    """Build the ingress auth headers (snowflake-ml ``utils/authentication.py``):
    ``snowflake_auth(token, oauth=False)``."""
    return _snowflake_auth


@pytest.fixture()
def pat_headers(local_stack: LocalStack) -> dict[str, str]:
    return _snowflake_auth(local_stack.issue_pat())


@pytest.fixture()
def clean_stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The shared stand-in, with faults, cold starts and grants put back after the test."""
    yield local_stack
    local_stack.reset_faults()
    for service in local_stack.services:
        local_stack.grant_role(service, "SPCS_LLM_USER")


@pytest.fixture()
def cortex(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The shared stand-in with its Cortex state (limits, grants, pace, counters) put back after the test."""
    local_stack.reset_cortex()
    yield local_stack
    local_stack.reset_cortex()


# --- plugin-level helpers (tests/integration/test_plugin_*.py, test_doctor.py) ------------------------------------


@pytest.fixture()
def dss_config(local_stack: LocalStack) -> Callable[..., dict]:
    """Build a DSS ``config`` dict for a plugin component: ``dss_config(service, auth, **model_params)``.

    ``auth`` is the resolved preset part, e.g. ``presets.oauth(token)`` or ``presets.pat(pat)``.
    """

    def build(service: str, auth: dict, **params: object) -> dict:
        return {"endpoint": local_stack.service_url(service), **auth, **params}

    return build


class Presets:
    """The auth part of a DSS config, as DSS resolves the plugin's presets, pointing at the stand-in account."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def oauth(self, token: str, mode: str = "direct") -> dict:
        """The per-user OAuth preset: the access token DSS obtained plus the preset's account and role."""
        return {"auth_type": "oauth", "oauth_preset": {
            "snowflake_oauth": token, "account_url": self.stack.account_url, "account_identifier": "LOCALTEST",
            "role": "SPCS_LLM_USER", "oauth_mode": mode}}

    def pat(self, pat: str, *, exchange: bool = False) -> dict:
        return {"auth_type": "service", "service_preset": {
            "service_auth": "pat", "pat": pat, "pat_exchange": exchange, "account_url": self.stack.account_url,
            "account_identifier": "LOCALTEST", "role": "SPCS_LLM_USER"}}

    def keypair(self, private_pem: str, user: str = "LOCAL_USER") -> dict:
        return {"auth_type": "service", "service_preset": {
            "service_auth": "keypair", "user": user, "private_key": private_pem, "role": "SPCS_LLM_USER",
            "account_url": self.stack.account_url, "account_identifier": "LOCALTEST"}}


@pytest.fixture()
def presets(local_stack: LocalStack) -> Presets:
    return Presets(local_stack)


@pytest.fixture(scope="session")
def rsa_key_pem() -> Callable[[], tuple[str, str]]:
    """``rsa_key_pem()`` → a fresh (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM) pair."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def make() -> tuple[str, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return private, public

    return make


class RewritingProxy:
    """A tiny HTTP forwarder in front of one ingress that rewrites request headers.

    It stands for an ingress behaving differently from the stand-in's (one that refuses direct OAuth, a
    request that reaches the ingress without its token); ``rewrite(headers, request_number)`` edits a copy.
    ``statuses`` records what the ingress answered, in order.
    """

    def __init__(self, target: str, rewrite: Callable[[dict[str, str], int], dict[str, str]]) -> None:
        import http.server
        import threading

        import requests

        self.statuses: list[int] = []
        proxy = self
        session = requests.Session()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                headers = rewrite(headers, len(proxy.statuses))
                answer = session.post(target + self.path, data=body, headers=headers, allow_redirects=False,
                                      timeout=60)
                proxy.statuses.append(answer.status_code)
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Location", "Retry-After"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture()
def rewriting_proxy() -> Iterator[Callable[..., RewritingProxy]]:
    """``rewriting_proxy(target_url, rewrite)`` → a running ``RewritingProxy``, closed after the test."""
    proxies: list[RewritingProxy] = []

    def start(target: str, rewrite: Callable[[dict[str, str], int], dict[str, str]]) -> RewritingProxy:
        proxies.append(RewritingProxy(target, rewrite))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()
