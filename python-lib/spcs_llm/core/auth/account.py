"""HTTP calls to the Snowflake account (login, session renewal, OAuth token exchange), with one small retry policy.

The account is not the ingress: its calls are few and cheap, so transient failures (connection errors, 5xx,
429) get at most three attempts with a short back-off, and redirects are never followed.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from spcs_llm.core.errors import ConfigurationError, TransportError
from spcs_llm.core.redaction import get_logger, redact

logger = get_logger(__name__)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 3
RETRY_WAIT = wait_random_exponential(multiplier=0.5, max=4.0)  # full jitter
ACCOUNT_URL_FIX = (
    "Check the 'Snowflake account URL' setting (https://<org>-<account>.snowflakecomputing.com) and that DSS can "
    "reach it (DNS, proxy, firewall)."
)

_default_session: requests.Session | None = None
_default_session_lock = threading.Lock()


def default_session() -> requests.Session:
    """One pooled session for account calls when the caller gives none."""
    global _default_session
    with _default_session_lock:
        if _default_session is None:
            _default_session = requests.Session()
        return _default_session


class _TransientStatus(Exception):
    def __init__(self, response: requests.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    reason = str(error) if isinstance(error, _TransientStatus) else type(error).__name__
    logger.info(
        "Snowflake account call failed (%s), attempt %d of %d; retrying.", reason, state.attempt_number, MAX_ATTEMPTS
    )


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
        retrying = Retrying(
            stop=stop_after_attempt(MAX_ATTEMPTS),
            wait=RETRY_WAIT,
            retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout, _TransientStatus)),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.session.post(
                        url,
                        params=params,
                        json=json_body,
                        data=form,
                        headers=headers,
                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                        allow_redirects=False,
                    )
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _TransientStatus(response)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransportError(
                f"Could not reach the Snowflake account at {self.account_url} for {purpose} "
                f"({type(error).__name__}: {redact(error)[:300]}).",
                fix=ACCOUNT_URL_FIX,
            ) from None
        except _TransientStatus as error:
            raise TransportError(
                f"The Snowflake account at {self.account_url} answered HTTP {error.response.status_code} to "
                f"{purpose} {MAX_ATTEMPTS} times.",
                fix="Retry in a few minutes; if it persists, check Snowflake's status page and " + ACCOUNT_URL_FIX,
                status=error.response.status_code,
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


def body_excerpt(response: requests.Response, limit: int = 300) -> str:
    """A short, redacted piece of an error body for messages (Snowflake's own explanation)."""
    return redact(response.text.strip())[:limit]
