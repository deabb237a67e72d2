"""Client-side handle on a stand-in process: start it (or attach to one), wait until ready, drive its control API.

The stand-in runs in its own process so that benchmarks measure a real network hop, without sharing the
client's GIL.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from spcs_llm.core.errors import ConfigurationError, TransportError
from spcs_llm.core.redaction import get_logger, register_secret
from spcs_standin.admin import ADMIN_HEADER
from spcs_standin.settings import ADMIN_SECRET_ENV

log = get_logger(__name__)
_PYTHON_LIB = Path(__file__).resolve().parents[2] / "python-lib"
_STANDIN = Path(__file__).resolve().parents[1]


class LocalStack:
    """A running stand-in. Use ``LocalStack.start(...)`` or ``LocalStack.attach(...)``; it is a context manager."""

    def __init__(self, account_url: str, services: dict[str, str], admin_secret: str,
                 process: subprocess.Popen[str] | None = None) -> None:
        register_secret(admin_secret)
        self.account_url = account_url
        self.services = dict(services)
        self._admin_secret = admin_secret
        self._process = process
        self._http = requests.Session()
        self._http.headers[ADMIN_HEADER] = admin_secret

    # --- lifecycle ----------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, *, preload: tuple[str, ...] = (), workers: int = 1, queue_size: int = 2,
              service_workers: dict[str, int] | None = None, ttl: dict[str, int] | None = None,
              extra_args: tuple[str, ...] = (), stderr_path: Path | None = None,
              startup_timeout: float = 180.0) -> LocalStack:
        """Start ``python -m spcs_standin`` as a subprocess and wait for its ready line.

        ``ttl`` maps token kinds (oauth_access, session, master, exchanged, pat, ...) to lifetimes in seconds;
        ``stderr_path`` captures the server's log (inherited from this process otherwise).
        """
        admin_secret = secrets.token_urlsafe(24)
        args = [sys.executable, "-m", "spcs_standin", "--workers", str(workers), "--queue", str(queue_size)]
        if preload:
            args += ["--preload", ",".join(preload)]
        if service_workers:
            args += ["--service-workers", ",".join(f"{k}={v}" for k, v in service_workers.items())]
        for kind, seconds in (ttl or {}).items():
            args += [f"--ttl-{kind.replace('_', '-')}", str(seconds)]
        args += list(extra_args)
        env = {**os.environ, ADMIN_SECRET_ENV: admin_secret,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(_PYTHON_LIB), str(_STANDIN),
                                                           os.environ.get("PYTHONPATH")]))}
        stderr = open(stderr_path, "w") if stderr_path else None
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        if stderr is not None:
            stderr.close()
        ready = _read_ready_line(process, startup_timeout)
        return cls(ready["account_url"], ready["services"], admin_secret, process)

    @classmethod
    def attach(cls, ready_line: str | dict[str, Any], admin_secret: str) -> LocalStack:
        """Use a stand-in started elsewhere, from its ready line and the admin secret it was started with."""
        ready = json.loads(ready_line) if isinstance(ready_line, str) else ready_line
        stack = cls(ready["account_url"], ready["services"], admin_secret)
        stack._admin("GET", "/__local__/health")
        return stack

    def stop(self) -> None:
        self._http.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- URLs -------------------------------------------------------------------------------------------------

    def service_url(self, service: str) -> str:
        if service not in self.services:
            raise ConfigurationError(f"No service named {service!r}.", fix=f"Use one of {sorted(self.services)}.")
        return self.services[service]

    @property
    def chat_url(self) -> str:
        return self.service_url("chat")

    @property
    def embed_url(self) -> str:
        return self.service_url("embed")

    @property
    def textgen_url(self) -> str:
        return self.service_url("textgen")

    def chat_template_url(self, family: str) -> str:
        """The OpenAI-chat service logged with ``family``'s real chat template (llama2, mistral, chatml, ...)."""
        return self.service_url(f"chat_{family}")

    @property
    def chat_vllm_url(self) -> str:
        """The OpenAI-chat service served by the vLLM engine (honours json_schema, real finish reasons)."""
        return self.service_url("chat_vllm")

    # --- control API ------------------------------------------------------------------------------------------

    def issue_pat(self, user: str | None = None, role: str | None = None, ttl: float | None = None) -> str:
        token = self._admin("POST", "/__local__/pat", {"user": user, "role": role, "ttl": ttl})["token"]
        register_secret(token)
        return token

    def issue_oauth_token(self, user: str | None = None, role: str | None = None, ttl: float | None = None) -> str:
        token = self._admin("POST", "/__local__/oauth-token", {"user": user, "role": role, "ttl": ttl})["access_token"]
        register_secret(token)
        return token

    def register_public_key(self, user: str, pem: str) -> str:
        """Returns the key's ``SHA256:`` fingerprint, as ``DESC USER`` shows it."""
        return self._admin("POST", "/__local__/public-key", {"user": user, "pem": pem})["fingerprint"]

    def set_faults(self, service: str, **knobs: Any) -> dict[str, Any]:
        return self._admin("POST", f"/__local__/services/{service}/faults", knobs)

    def reset_faults(self) -> None:
        self._admin("DELETE", "/__local__/faults")

    def stats(self, service: str, *, reset: bool = False) -> dict[str, Any]:
        return self._admin("DELETE" if reset else "GET", f"/__local__/services/{service}/stats")

    def set_cold_start(self, service: str, seconds: float) -> None:
        self._admin("POST", f"/__local__/services/{service}/cold-start", {"seconds": seconds})

    def suspend(self, service: str, phases: Sequence[tuple[int | str, float]]) -> None:
        """Suspend ``service``: its next contact begins a resume through ``phases`` of (answer, seconds), answer
        503 (resuming), 502 (model still loading, HTML body) or "refuse" (connection reset); then it answers."""
        self._admin("POST", f"/__local__/services/{service}/suspend",
                    {"phases": [{"answer": answer, "seconds": seconds} for answer, seconds in phases]})

    def grant_role(self, service: str, role: str) -> None:
        self._admin("POST", f"/__local__/services/{service}/grants", {"role": role})

    def revoke_role(self, service: str, role: str) -> None:
        self._admin("DELETE", f"/__local__/services/{service}/grants", {"role": role})

    # --- Cortex endpoints (on the account host) ----------------------------------------------------------------

    @property
    def cortex_url(self) -> str:
        """The account URL the Cortex components take as 'Snowflake account URL' (routes under /api/v2/cortex)."""
        return self.account_url

    def set_cortex_user(self, user: str, granted: bool) -> None:
        """Whether ``user``'s default role holds SNOWFLAKE.CORTEX_USER (without it, Cortex answers 403)."""
        self._admin("POST", f"/__local__/cortex/users/{user}", {"cortex_user": granted})

    def set_cortex_rate_limit(self, model: str, requests_per_window: int | None, window_s: float = 60.0) -> None:
        """At most ``requests_per_window`` requests per ``window_s`` to ``model``, then 429 with Retry-After;
        None lifts the limit."""
        path = f"/__local__/cortex/models/{model}/rate-limit"
        if requests_per_window is None:
            self._admin("DELETE", path)
        else:
            self._admin("POST", path, {"requests": requests_per_window, "window_s": window_s})

    def set_cortex_pace(self, token_delay_s: float) -> None:
        """Pause ``token_delay_s`` after each streamed piece (a real model's pace; 0 = as fast as the CPU)."""
        self._admin("POST", "/__local__/cortex/pace", {"token_delay_s": token_delay_s})

    def cortex_stats(self, *, reset: bool = False) -> dict[str, Any]:
        return self._admin("DELETE" if reset else "GET", "/__local__/cortex/stats")

    def reset_cortex(self) -> None:
        """Lift every Cortex rate limit and CORTEX_USER revocation and zero the Cortex counters."""
        self._admin("DELETE", "/__local__/cortex")

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._http.request(method, self.account_url + path, json=body, timeout=30)
        except requests.RequestException as exc:
            raise TransportError(f"The local stand-in at {self.account_url} did not answer: {exc}",
                                 fix="Start it again (spcs-llm local) or check that the process is alive.") from exc
        if response.status_code != 200:
            try:
                refused = response.json()
            except ValueError:
                refused = {}
            raise ConfigurationError(
                f"The stand-in refused {method} {path}: {refused.get('error') or response.text[:300]}",
                fix=refused.get("fix") or "Check the request against its handler in spcs_standin/admin.py.")
        return response.json()


def _read_ready_line(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """Wait for the one JSON line the stand-in prints once ready; fail with its exit status otherwise."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None

    def pump() -> None:  # keep draining stdout so a chatty library can never block the server on a full pipe
        for text in process.stdout:  # type: ignore[union-attr]
            lines.put(text)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise TransportError(
                f"The local stand-in was not ready within {timeout:.0f} s.",
                fix="Look at its stderr; the first start builds the tiny model (about 10 s).",
            ) from None
        if not line:
            raise TransportError(f"The local stand-in exited with status {process.wait()} before it was ready.",
                                 fix="Look at its stderr above for the reason.")
        if line.startswith('{"event": "ready"'):
            return json.loads(line)
