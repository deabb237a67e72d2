"""Snowflake OAuth access token → Snowflake session (``login-request``), and session renewal (``token-request``).

Per snowflake-connector ``auth/_auth.py`` (validityInSeconds, masterValidityInSeconds), the session token (~1 h) and
master token (~4 h; typical values, inferred) outlive the ~10 min access token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

import requests

from spcs_llm import __version__
from spcs_llm.core.auth.account import ACCOUNT_URL_FIX, AccountClient, body_excerpt
from spcs_llm.core.auth.credential import MasterToken
from spcs_llm.core.errors import AuthenticationError, ConfigurationError, CredentialMissingError
from spcs_llm.core.redaction import get_logger, register_secret

logger = get_logger(__name__)

# A non-Python client id (with JSON results below) keeps the ingress from meeting an ARROW-format session (snowflake-ml
# feature_store/online_service_http_client.py docstring: HTTP 500 "empty data"); the JSON parameter is sourced,
# the client-id part is inferred.
CLIENT_APP_ID = "spcs-llm"
DEFAULT_SESSION_VALIDITY = 3600.0  # typical validityInSeconds (connector test mocks); used if the answer omits it
DEFAULT_MASTER_VALIDITY = 14400.0  # typical masterValidityInSeconds (connector test mocks)
ACCESS_TOKEN_REFUSED_CODES = {"390303": "invalid", "390318": "expired"}
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


@dataclass(frozen=True)
class SessionTokens:
    session_token: str
    expires_at: float
    master: MasterToken | None


def account_name(account_url: str, account_identifier: str | None = None) -> str:
    """``ACCOUNT_NAME`` of the login body: the first label of the identifier, else of the account host, upper-cased."""
    source = account_identifier or urlparse(account_url).hostname or ""
    return source.split(".")[0].upper()


def _json(response: requests.Response, purpose: str, account_url: str) -> dict:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ConfigurationError(
            f"{account_url} did not answer {purpose} like a Snowflake account (HTTP {response.status_code}, not JSON).",
            fix=ACCOUNT_URL_FIX,
            status=response.status_code,
        )
    return payload


def _tokens(data: dict, token_field: str, now: float, previous_master: MasterToken | None) -> SessionTokens:
    """Read a login answer (``validityInSeconds``/``masterValidityInSeconds``) or a renewal answer, which other
    drivers read as ``validityInSecondsST``/``validityInSecondsMT`` (Snowflake's Go/.NET/Node driver sources)."""
    session_token = str(data[token_field])
    register_secret(session_token)
    master = previous_master
    if data.get("masterToken"):
        master_token = str(data["masterToken"])
        register_secret(master_token)
        validity = float(
            data.get("masterValidityInSeconds") or data.get("validityInSecondsMT") or DEFAULT_MASTER_VALIDITY
        )
        master = MasterToken(token=master_token, expires_at=now + validity)
    validity = float(data.get("validityInSeconds") or data.get("validityInSecondsST") or DEFAULT_SESSION_VALIDITY)
    return SessionTokens(session_token=session_token, expires_at=now + validity, master=master)


def login_with_oauth(client: AccountClient, access_token: str, role: str | None) -> SessionTokens:
    """Exchange an OAuth access token for a session; map Snowflake's refusals to errors that name the fix."""
    register_secret(access_token)
    params = {"request_id": str(uuid.uuid4())}
    if role:
        params["roleName"] = role
    body = {
        "data": {
            "CLIENT_APP_ID": CLIENT_APP_ID,
            "CLIENT_APP_VERSION": __version__,
            "ACCOUNT_NAME": account_name(client.account_url, client.account_identifier),
            "AUTHENTICATOR": "OAUTH",
            "TOKEN": access_token,
            "SESSION_PARAMETERS": {"PYTHON_CONNECTOR_QUERY_RESULT_FORMAT": "JSON"},
        }
    }
    now = time.time()
    response = client.post(
        "/session/v1/login-request", purpose="the OAuth login", params=params, json_body=body, headers=JSON_HEADERS
    )
    if response.status_code == 403:
        raise ConfigurationError(
            f"The Snowflake account at {client.account_url} refused the OAuth login with HTTP 403.",
            fix="Check that 'Snowflake account URL' is the host of the account that issued the OAuth token, and "
            "that no network policy blocks DSS's IP address (ALTER NETWORK POLICY … ALLOWED_IP_LIST).",
            status=403,
        )
    if response.status_code != 200:
        raise AuthenticationError(
            f"The Snowflake OAuth login failed with HTTP {response.status_code}: {body_excerpt(response)}",
            status=response.status_code,
        )
    payload = _json(response, "the OAuth login", client.account_url)
    if not payload.get("success"):
        code = str(payload.get("code") or "")
        message = str(payload.get("message") or "no message")
        if code in ACCESS_TOKEN_REFUSED_CODES:
            raise CredentialMissingError(
                f"Snowflake refused your OAuth access token as {ACCESS_TOKEN_REFUSED_CODES[code]} "
                f"(code {code}: {message})."
            )
        raise AuthenticationError(
            f"Snowflake refused the OAuth login (code {code or 'none'}: {message}).",
            fix="Re-authorise in Profile & Settings → Credentials; check that the preset's role is one your user "
            "may use and that the OAuth scope allows it (session:role:<ROLE>).",
        )
    data = payload.get("data") or {}
    if not data.get("token"):
        raise AuthenticationError("Snowflake accepted the OAuth login but returned no session token.")
    tokens = _tokens(data, "token", now, None)
    logger.debug("OAuth login returned a session token valid %.0f s.", tokens.expires_at - now)
    return tokens


def renew_session(client: AccountClient, session_token: str, master: MasterToken) -> SessionTokens:
    """Get a new session token from the master token; ``AuthenticationError`` when Snowflake refuses
    (e.g. 390114, master token expired)."""
    # Inferred: the RENEW request and its data.sessionToken answer come from snowflake-connector's network.py
    # (REQUEST_TYPE_RENEW); a refusal here falls back to a fresh login, so a wrong guess costs one call.
    # The query parameter is spelled `requestId` here, as snowflake-connector's network.py _token_request sends it
    # (REQUEST_ID = "requestId"); only login-request uses `request_id` (connector auth/_auth.py).
    headers = {**JSON_HEADERS, "Authorization": f'Snowflake Token="{master.token}"'}
    now = time.time()
    response = client.post(
        "/session/token-request",
        purpose="the session renewal",
        params={"requestId": str(uuid.uuid4())},
        json_body={"oldSessionToken": session_token, "requestType": "RENEW"},
        headers=headers,
    )
    if response.status_code != 200:
        raise AuthenticationError(
            f"Snowflake refused to renew the session with HTTP {response.status_code}.", status=response.status_code
        )
    payload = _json(response, "the session renewal", client.account_url)
    data = payload.get("data") or {}
    if not payload.get("success") or not data.get("sessionToken"):
        raise AuthenticationError(
            f"Snowflake refused to renew the session (code {payload.get('code') or 'none'}: "
            f"{payload.get('message') or 'no message'})."
        )
    return _tokens(data, "sessionToken", now, master)
