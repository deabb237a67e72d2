"""Cortex's backend profile (``core/backend.py``): the transport's typed errors with fixes that fit Cortex, and its
transport options, declared once.

The transport classifies answers the same way for both backends; only the advice differs (a 403 from Cortex
means a missing CORTEX_USER grant, not a missing service role). Cortex has no service to resume, so no cold-start
waits, and a 403 is final at once (a missing grant, not routing still propagating after a deploy).
"""

from __future__ import annotations

from collections.abc import Mapping

from spcs_llm.core.backend import BackendProfile
from spcs_llm.core.errors import (
    BadResponseError,
    EndpointNotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServiceUnavailableError,
    SpcsLlmError,
    TransportError,
)
from spcs_llm.core.retry import RetrySettings
from spcs_llm.cortex.auth import CORTEX_ROLE_FIX

MODEL_FIX = (
    "Check the model name: it must be available in your account's region (or enable cross-region inference: "
    "ALTER ACCOUNT SET CORTEX_ENABLED_CROSS_REGION = 'ANY_REGION'), or be a fine-tuned model's fully qualified "
    "name that the default role may use."
)
CORTEX_FIXES: Mapping[type[SpcsLlmError], str] = {
    PermissionDeniedError: CORTEX_ROLE_FIX,
    EndpointNotFoundError: "Check 'Snowflake account URL' (https://<account>.snowflakecomputing.com). " + MODEL_FIX,
    RateLimitedError: "Cortex limits tokens and requests per minute per model and account "
    "(SNOWFLAKE.ACCOUNT_USAGE.CORTEX_REST_API_RATE_LIMIT_POLICIES): lower 'Max parallelism' or spread the work.",
    ServiceUnavailableError: "Cortex is busy or unavailable in this region: retry later, or use another model.",
    RequestRejectedError: MODEL_FIX + " Also check the query's settings (tools, JSON schema, max tokens).",
    BadResponseError: "Check that 'Snowflake account URL' is the account's URL, not a service ingress host.",
    TransportError: "Check network access from DSS to the Snowflake account host (DNS, proxy, firewall); if the "
    "answer was only slow, raise 'Read timeout' or lower the max output tokens.",
}


# For answers Cortex itself sent in an unexpected shape (the transport's BadResponseError advice is about a wrong URL).
UNEXPECTED_ANSWER_FIX = ("Retry the query; if it persists, check that the model is of the component's kind (chat or "
                         "embedding) and the settings sent with it (JSON schema, tools, max tokens).")


class CortexStreamError(BadResponseError):
    """Cortex ended a stream with an error event (snowflake-ml cortex/_complete.py MidStreamException)."""

    default_fix = "Retry the query; if it persists, check the model name, the JSON schema or the tools sent with it."


def cortex_profile(auth_fix: str) -> BackendProfile:
    """Cortex's profile for a credential kind (the fix for a rejected credential depends on it)."""
    return BackendProfile(
        name="cortex", fixes=CORTEX_FIXES, auth_fix=auth_fix, cold_starts=False,
        retry=RetrySettings(deploy_403_window=0.0),
    )
