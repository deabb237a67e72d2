"""The secret scan's two halves: every secret value the tests create or the library obtains, and every text a
user or an operator could read (DEBUG logs of every logger, DSS traces, answers, exception texts, the stand-in log).

Secrets the library obtains on its own (session, master and exchanged tokens, key-pair assertions) are learnt
through test-only hooks on the library's own seams; nothing in the library reveals them.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MIN_SECRET_LENGTH = 8  # shorter values would match ordinary text; every real secret here is far longer
# DSS's own OAuth client, which the test harness (DssOAuthCredential) emulates with requests-oauthlib: it logs
# codes and tokens at DEBUG. It is DSS's side of the credential, not the plugin's, so its records are not scanned.
DSS_SIDE_LOGGERS = ("requests_oauthlib", "oauthlib")


@dataclass
class SecretLedger:
    """Secret values by kind (``pat``, ``session``, ``master``, ``private-key``, …)."""

    values: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_LENGTH:
            with self.lock:
                self.values.setdefault(kind, set()).add(value)

    def add_private_key(self, pem: str) -> None:
        """The key's base64 body, line by line: any one line found in a text is a leak."""
        for line in pem.strip().splitlines():
            if not line.startswith("-----"):
                self.add("private-key", line)

    def kinds(self) -> set[str]:
        with self.lock:
            return {kind for kind, values in self.values.items() if values}

    def leaks(self, text: str) -> list[str]:
        """``kind: first characters…`` of each secret found in ``text`` (never the whole value)."""
        with self.lock:
            items = [(kind, value) for kind, values in self.values.items() for value in values]
        return sorted({f"{kind}: {value[:6]}…" for kind, value in items if value in text})


def install_hooks(ledger: SecretLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record secrets at the seams where the library obtains or sends them (wrapping, never changing, behaviour)."""
    from spcs_llm.core import auth
    from spcs_llm.core.auth import credential, oauth_session
    from spcs_standin import harness, stack

    real_headers = credential.Credential.headers
    real_tokens = oauth_session._tokens
    real_assertion = auth.build_assertion
    real_issue_pat = stack.LocalStack.issue_pat
    real_issue_oauth = stack.LocalStack.issue_oauth_token
    real_fetch = harness.DssOAuthCredential.authorize
    real_refresh = harness.DssOAuthCredential.refresh

    def headers(self: credential.Credential) -> dict[str, str]:
        ledger.add(f"ingress-{self.kind}", self.token)
        return real_headers(self)

    def tokens(*args: Any, **kwargs: Any) -> oauth_session.SessionTokens:
        answer = real_tokens(*args, **kwargs)
        ledger.add("session", answer.session_token)
        ledger.add("master", answer.master.token if answer.master else None)
        return answer

    def assertion(*args: Any, **kwargs: Any) -> str:
        value = real_assertion(*args, **kwargs)
        ledger.add("keypair-assertion", value)
        return value

    def issue_pat(self: stack.LocalStack, *args: Any, **kwargs: Any) -> str:
        value = real_issue_pat(self, *args, **kwargs)
        ledger.add("pat", value)
        return value

    def issue_oauth(self: stack.LocalStack, *args: Any, **kwargs: Any) -> str:
        value = real_issue_oauth(self, *args, **kwargs)
        ledger.add("oauth-access", value)
        return value

    def remember_dss_tokens(owner: harness.DssOAuthCredential) -> None:
        ledger.add("oauth-access", owner.token.get("access_token"))
        ledger.add("oauth-refresh", owner.token.get("refresh_token"))
        ledger.add("oauth-client-secret", owner.client_secret)

    def authorize(self: harness.DssOAuthCredential) -> str:
        value = real_fetch(self)
        remember_dss_tokens(self)
        return value

    def refresh(self: harness.DssOAuthCredential) -> str:
        value = real_refresh(self)
        remember_dss_tokens(self)
        return value

    monkeypatch.setattr(credential.Credential, "headers", headers)
    monkeypatch.setattr(oauth_session, "_tokens", tokens)
    monkeypatch.setattr(auth, "build_assertion", assertion)
    monkeypatch.setattr(stack.LocalStack, "issue_pat", issue_pat)
    monkeypatch.setattr(stack.LocalStack, "issue_oauth_token", issue_oauth)
    monkeypatch.setattr(harness.DssOAuthCredential, "authorize", authorize)
    monkeypatch.setattr(harness.DssOAuthCredential, "refresh", refresh)


class Exposure:
    """Everything readable that one test produced: DEBUG records of every logger, plus texts handed to ``add``."""

    def __init__(self, standin_logs: list[Path]) -> None:
        self._buffer = io.StringIO()
        self._handler = logging.StreamHandler(self._buffer)
        self._handler.setLevel(logging.DEBUG)
        self._handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self._handler.addFilter(lambda record: not record.name.startswith(DSS_SIDE_LOGGERS))
        self._texts: list[str] = []
        self._lock = threading.Lock()
        self._standin_offsets = {log: log.stat().st_size if log.exists() else 0 for log in standin_logs}
        self._root_level = logging.root.level

    def start(self) -> None:
        logging.root.addHandler(self._handler)
        logging.root.setLevel(logging.DEBUG)

    def stop(self) -> None:
        logging.root.removeHandler(self._handler)
        logging.root.setLevel(self._root_level)

    def add(self, value: Any) -> None:
        """A trace (``SpanBuilder``), an answer (dict), an exception (with its traceback) or any text."""
        if isinstance(value, BaseException):
            text = "".join(traceback.format_exception(value)) + repr(value)
        elif hasattr(value, "to_dict"):
            text = json.dumps(value.to_dict(), default=str)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        with self._lock:
            self._texts.append(text)

    def add_all(self, values: Iterable[Any]) -> None:
        for value in values:
            self.add(value)

    def log_text(self) -> str:
        return self._buffer.getvalue()

    def standin_text(self) -> str:
        """What the stand-in processes logged since this test began (their --verbose DEBUG logs)."""
        parts = []
        for path, offset in self._standin_offsets.items():
            if path.exists():
                with path.open(encoding="utf-8", errors="replace") as log:
                    log.seek(offset)
                    parts.append(log.read())
        return "\n".join(parts)

    def everything(self) -> str:
        with self._lock:
            texts = list(self._texts)
        return "\n".join([self.log_text(), self.standin_text(), *texts])
