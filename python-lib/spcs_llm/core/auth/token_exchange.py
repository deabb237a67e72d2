"""Short-lived ingress tokens from ``POST <account>/oauth/token`` (PAT token-exchange, key-pair JWT bearer).

As in snowflake-ml ``utils/authentication.py`` and Snowflake's sfc-gh-bhess/ex_spcs_token sample: the form is
url-encoded, the answer is the raw token text (itself a JWT whose ``exp`` we read without verifying, to plan the
refresh).
"""

from __future__ import annotations

import time

import jwt

from spcs_llm.core.auth.account import AccountClient, body_excerpt
from spcs_llm.core.errors import AuthenticationError
from spcs_llm.core.redaction import get_logger, register_secret

logger = get_logger(__name__)

FALLBACK_LIFETIME_SECONDS = 3600.0  # when the token carries no readable exp; Snowflake caps these at ~1 h (inferred)
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/plain, application/json"}


def scope_for(role: str | None, endpoint_host: str) -> str:
    """``session:role:<ROLE> <host>`` or just ``<host>`` (host without scheme). The ``session:role:`` spelling
    follows snowflake-ml's JWT flow; the PAT example (sfc-gh-bhess/ex_spcs_token ``pat_gen.py``) used
    ``session:scope:`` (inferred: ``session:role:`` works for both)."""
    return f"session:role:{role} {endpoint_host}" if role else endpoint_host


def pat_exchange_form(pat: str, role: str | None, endpoint_host: str) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": pat,
        "subject_token_type": "programmatic_access_token",
        "scope": scope_for(role, endpoint_host),
    }


def jwt_bearer_form(assertion: str, role: str | None, endpoint_host: str) -> dict[str, str]:
    return {"grant_type": JWT_BEARER_GRANT, "scope": scope_for(role, endpoint_host), "assertion": assertion}


def token_expiry(token: str, fetched_at: float) -> float:
    """The token's ``exp`` claim, read without verifying the signature; ``fetched_at`` + 1 h if it has none."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        logger.debug("Exchanged token has no readable exp claim; assuming %.0f s.", FALLBACK_LIFETIME_SECONDS)
        return fetched_at + FALLBACK_LIFETIME_SECONDS


def exchange_for_ingress_token(
    client: AccountClient, form: dict[str, str], *, purpose: str, fix: str
) -> tuple[str, float]:
    """POST the form to ``/oauth/token``; return the token and its expiry, or raise ``AuthenticationError``.
    The caller has registered the form's secret (PAT or assertion) already."""
    fetched_at = time.time()
    response = client.post("/oauth/token", purpose=purpose, form=form, headers=FORM_HEADERS)
    if response.status_code != 200:
        raise AuthenticationError(
            f"Snowflake refused the {purpose} at {client.account_url}/oauth/token with HTTP "
            f"{response.status_code}: {body_excerpt(response)}",
            fix=fix,
            status=response.status_code,
        )
    token = response.text.strip()
    if not token:
        raise AuthenticationError(f"Snowflake answered the {purpose} with an empty token.", fix=fix)
    register_secret(token)
    expires_at = token_expiry(token, fetched_at)
    logger.debug("The %s returned a token valid %.0f s.", purpose, expires_at - fetched_at)
    return token, expires_at
