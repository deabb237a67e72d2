"""HTTP calls to the Snowflake account (login, session renewal, OAuth token exchange), under the one retry policy.

The account is not the ingress: its calls are few and cheap, so transient failures (connection errors, 5xx,
429) get at most three attempts with a short back-off (``core/retry.py``'s ``RetryPolicy``, the one every HTTP
call of the connector uses: full jitter, the server's ``Retry-After`` honoured and capped), and redirects are never
followed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from spcs_llm.core.errors import ConfigurationError, TransportError
from spcs_llm.core.redaction import get_logger, redact
from spcs_llm.core.registry import PROCESS, REGISTRY
from spcs_llm.core.retry import RetryableError, RetryPolicy, RetrySettings, parse_retry_after
from spcs_llm.core.sessions import credential_session

logger = get_logger(__name__)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 3
MAX_RETRY_SECONDS = 30.0  # an account call that still fails after this is reported, not waited on
# Short waits (full jitter up to 1, 2, then 4 s); a Retry-After longer than 10 s is cut to 10 s.
ACCOUNT_RETRY_SETTINGS = RetrySettings(initial_backoff=1.0, max_backoff=4.0, retry_after_cap=10.0)
RETRY_SLEEP: Callable[[float], None] = time.sleep  # read at each call, so tests can switch the waits off
ACCOUNT_URL_FIX = (
    "Check the 'Snowflake account URL' setting (https://<org>-<account>.snowflakecomputing.com) and that DSS can "
    "reach it (DNS, proxy, firewall)."
)

SESSION = "auth.account_session"  # the account calls' default session, process-wide, in the registry


def default_session() -> requests.Session:
    """One pooled session for account calls when the caller gives none (closed by ``reset_process_state``); like
    every session of the connector it keeps the Authorization header the call sets (``core/sessions.py``)."""
    return REGISTRY.setdefault(PROCESS, SESSION, credential_session)


class AccountClient:
    """Posts to ``<account_url><path>``; connection failures and persistent 5xx/429 become ``TransportError``."""

    def __init__(
        self, account_url: str, session: requests.Session | None = None, account_identifier: str | None = None
    ):
        self.account_url = account_url.rstrip("/")
        self.account_identifier = account_identifier  # when the URL's host does not carry the account's name
        self.session = session or default_session()

    def post(
        self,
        path: str,
        *,
        purpose: str,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        url = f"{self.account_url}{path}"
        policy = RetryPolicy(
            max_attempts=MAX_ATTEMPTS, max_retry_seconds=MAX_RETRY_SECONDS, settings=ACCOUNT_RETRY_SETTINGS,
            sleep=RETRY_SLEEP, label=f"Snowflake account ({purpose})",
        )
        attempts = 0
        try:
            for attempt in policy.retrying():
                with attempt:
                    attempts += 1
                    response = self._send(url, params=params, json_body=json_body, form=form, headers=headers)
        except RetryableError as failure:
            if failure.status is None:
                raise TransportError(
                    f"Could not reach the Snowflake account at {self.account_url} for {purpose} ({failure.detail}).",
                    fix=ACCOUNT_URL_FIX,
                ) from None
            raise TransportError(
                f"The Snowflake account at {self.account_url} answered HTTP {failure.status} to "
                f"{purpose} {attempts} times.",
                fix="Retry in a few minutes; if it persists, check Snowflake's status page and " + ACCOUNT_URL_FIX,
                status=failure.status,
            ) from None
        if 300 <= response.status_code < 400:
            raise ConfigurationError(
                f"The Snowflake account URL {self.account_url} redirected {purpose} to another address.",
                fix="Use the account's own host in 'Snowflake account URL' "
                "(https://<org>-<account>.snowflakecomputing.com), not a login page or a vanity URL.",
                status=response.status_code,
            )
        logger.debug("Snowflake account answered HTTP %d to %s.", response.status_code, purpose)
        return response

    def _send(self, url: str, **request: Any) -> requests.Response:
        """One attempt; connection failures, 429 and 5xx become ``RetryableError`` (429/503 with Retry-After)."""
        try:
            response = self.session.post(
                url,
                params=request["params"],
                json=request["json_body"],
                data=request["form"],
                headers=request["headers"],
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise RetryableError(
                "connection", detail=f"{type(error).__name__}: {redact(error)[:300]}"
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableError(
                str(status), status=status, detail=f"HTTP {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()),
            )
        return response


def body_excerpt(response: requests.Response, limit: int = 300) -> str:
    """A short, redacted piece of an error body for messages (Snowflake's own explanation)."""
    return redact(response.text.strip())[:limit]
