"""The transport's typed errors, with fixes that fit Cortex instead of an SPCS service.

The transport classifies answers the same way for both backends; only the advice differs (a 403 from Cortex
means a missing CORTEX_USER grant, not a missing service role).
"""

from __future__ import annotations

from spcs_llm.core.errors import (
    AuthenticationError,
    BadResponseError,
    EndpointNotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServiceUnavailableError,
    SpcsLlmError,
    TransportError,
)
from spcs_llm.cortex.auth import CORTEX_ROLE_FIX

MODEL_FIX = (
    "Check the model name: it must be available in your account's region (or enable cross-region inference: "
    "ALTER ACCOUNT SET CORTEX_ENABLED_CROSS_REGION = 'ANY_REGION'), or be a fine-tuned model's fully qualified "
    "name that the default role may use."
)
CORTEX_FIXES: dict[type[SpcsLlmError], str] = {
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


class CortexStreamError(BadResponseError):
    """Cortex ended a stream with an error event (snowflake-ml cortex/_complete.py MidStreamException)."""

    default_fix = "Retry the query; if it persists, check the model name, the JSON schema or the tools sent with it."


def for_cortex(error: SpcsLlmError, auth_fix: str) -> SpcsLlmError:
    """The same error type and message, with the fix for Cortex (the most specific registered type wins).

    Errors raised in this package already carry Cortex advice and pass unchanged.
    """
    if type(error).__module__.startswith(__package__ or "spcs_llm.cortex"):
        return error
    if isinstance(error, AuthenticationError):
        fix = auth_fix
    else:
        fix = next((CORTEX_FIXES[kind] for kind in type(error).__mro__ if kind in CORTEX_FIXES), None)
    if fix is None or type(error).__init__ is not SpcsLlmError.__init__:
        return error
    return type(error)(error.message, fix=fix, status=error.status)
