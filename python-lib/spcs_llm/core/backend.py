"""What a backend declares to the shared transport, once: how its failures are explained and fixed, and how
patient the transport is with it.

The transport classifies answers the same way for every backend (``http_answers.py``); only the advice and a few
waits differ. An SPCS service may be suspended (cold-start waits) and answers 403 for a minute after a deploy
while routing propagates; the Cortex REST API has no service to resume and a 403 means a missing grant. Each
backend declares its profile in one place (``spcs/client.py``, ``cortex/errors.py``) and hands it to the
``Transport``, which builds every error with the backend's fix the first time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from spcs_llm.core.errors import AuthenticationError, SpcsLlmError
from spcs_llm.core.retry import RetrySettings

E = TypeVar("E", bound=SpcsLlmError)


@dataclass(frozen=True, eq=False)
class BackendProfile:
    """A backend's name, its advice per error type, and its transport options."""

    name: str
    # The fix per error type for this backend; the most specific registered type wins, unlisted types keep the
    # error's own default fix (or the explicit fix the transport gives).
    fixes: Mapping[type[SpcsLlmError], str] = field(default_factory=dict)
    auth_fix: str | None = None  # the fix for every AuthenticationError (it depends on the credential kind)
    cold_starts: bool = True  # whether the endpoint may be a suspended service: then its cold-start wait applies
    retry: RetrySettings = field(default_factory=RetrySettings)  # back-off, the 403-after-deploy window, …

    def fix_for(self, kind: type[SpcsLlmError]) -> str | None:
        """This backend's fix for errors of ``kind``, or None to keep the error's own."""
        if issubclass(kind, AuthenticationError) and self.auth_fix is not None:
            return self.auth_fix
        return next((self.fixes[base] for base in kind.__mro__ if base in self.fixes), None)

    def error(self, kind: type[E], message: str, *, fix: str | None = None, status: int | None = None) -> E:
        """An error of ``kind`` with this backend's fix (else ``fix``, else the type's default)."""
        return kind(message, fix=self.fix_for(kind) or fix, status=status)


PLAIN = BackendProfile(name="http")  # the errors' own fixes and the default waits (tools and tests using Transport)
