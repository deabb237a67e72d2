"""Typed errors. Every message says what happened and names the fix; none carries a secret."""

from __future__ import annotations

import re
from collections.abc import Mapping

from spcs_llm.core.redaction import redact

_COMMAND_OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")


class SpcsLlmError(Exception):
    """Base class. ``fix`` is the action that resolves the problem, shown to the DSS user."""

    default_fix = ""

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None):
        self.message = redact(message)
        self.fix = redact(fix if fix is not None else self.default_fix)
        self.status = status
        super().__init__(str(self))

    def in_terms_of(self, settings: Mapping[str, str], elsewhere: str = "") -> SpcsLlmError:
        """This error with the command line's options named as a form names its settings: the deployment library
        speaks the CLI's language, a macro or the Flow recipe its own. ``settings`` maps an option (``--gpu-pool``)
        to the form's words (``'GPU compute pool'``), or an option with its value (``--mode job``) to a phrase;
        options the fix names that the form lacks are listed at its end with ``elsewhere`` (e.g. "options of
        `spcs-llm deploy`, not of this form"). A command quoted in backticks is left as written: it is meant to be
        run."""
        unmapped: list[str] = []

        def reword(text: str, *, note_unmapped: bool) -> str:
            def name(found: re.Match[str]) -> str:
                option = found[0]
                if option in settings:
                    return settings[option]
                if note_unmapped and option not in unmapped:
                    unmapped.append(option)
                return option

            parts = text.split("`")
            for index in range(0, len(parts), 2):  # outside backticks
                for phrase in (key for key in settings if " " in key):  # an option with its value: "--mode job"
                    parts[index] = parts[index].replace(phrase, settings[phrase])
                parts[index] = _COMMAND_OPTION.sub(name, parts[index])
            return "`".join(parts)

        self.message = reword(self.message, note_unmapped=False)
        self.fix = reword(self.fix, note_unmapped=True)
        if unmapped and elsewhere:
            self.fix = f"{self.fix.rstrip('.')} ({', '.join(unmapped)}: {elsewhere})."
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        if not self.fix:
            return self.message
        # One sentence per part: the message always ends with its full stop before "Fix:" (e.g. a library's text
        # such as "... known ones are []" quoted at the end of a message gets one).
        message = self.message.rstrip()
        return f"{message}{'' if message.endswith(('.', '!', '?')) else '.'} Fix: {self.fix}"


class ConfigurationError(SpcsLlmError):
    default_fix = "Correct the model's settings in the Custom LLM connection."


class CredentialMissingError(SpcsLlmError):
    default_fix = (
        "Authorise your Snowflake credential in DSS: Profile & Settings → Credentials → the spcs-llm preset → "
        "Authorize."
    )


class AuthenticationError(SpcsLlmError):
    default_fix = (
        "Re-authorise in Profile & Settings → Credentials (OAuth), or check the PAT / key-pair user and role of the "
        "preset."
    )


class PermissionDeniedError(SpcsLlmError):
    default_fix = (
        "Grant the service role to the caller's role: GRANT SERVICE ROLE <db>.<schema>.<service>!ALL_ENDPOINTS_USAGE "
        "TO ROLE <role>; and make sure the OAuth scope / PAT role restriction uses that role."
    )


class EndpointNotFoundError(SpcsLlmError):
    default_fix = (
        "Check the endpoint: use the ingress host from SHOW ENDPOINTS IN SERVICE <service> (column ingress_url) "
        "and the method route (e.g. __call__, predict, encode)."
    )


class ServiceUnavailableError(SpcsLlmError):
    default_fix = (
        "The service is suspended, resuming or overloaded: wait a minute and retry, resume it with "
        "ALTER SERVICE <service> RESUME, or raise min_instances / max_instances."
    )


class ServiceResumeTimeoutError(ServiceUnavailableError):
    """The service kept answering like a suspended service waking up (502, 503, refused connections) too long."""

    default_fix = (
        "Raise 'Cold-start wait (s)' on the model, or keep the service running so it never has to resume: "
        "ALTER SERVICE <service> SET MIN_INSTANCES = 1 (billed while idle)."
    )


class RateLimitedError(SpcsLlmError):
    default_fix = "Lower 'Max parallelism' on the model, or add service instances / workers."


class TransportError(SpcsLlmError):
    default_fix = "Check network access from DSS to the ingress host (DNS, proxy, firewall) and the timeouts."


class BadResponseError(SpcsLlmError):
    default_fix = (
        "The endpoint did not answer like a Snowflake model service: check the endpoint URL, the route and the "
        "'Service protocol' setting."
    )


class RequestRejectedError(SpcsLlmError):
    default_fix = ("Check the 'Service protocol' and route settings against the model's signature (SHOW FUNCTIONS IN "
                   "MODEL).")


class InputTooLongError(SpcsLlmError):
    default_fix = ("Shorten the input, split it into chunks (e.g. the Embed recipe's splitter), or lower max output "
                   "tokens.")


class PayloadTooLargeError(RequestRejectedError):
    """HTTP 413: the request body was too big for the ingress or the model server; callers may split it."""

    default_fix = "Send fewer rows per request (lower 'Rows per request' or 'Max request bytes'), or shorten the input."


class DeploymentError(SpcsLlmError):
    """A model could not be logged or served in Snowflake (used by ``spcs_llm.deploy`` and ``spcs-llm deploy``)."""

    default_fix = ("Run `spcs-llm setup-sql`, apply it as ACCOUNTADMIN, then re-run `spcs-llm deploy` (it is "
                   "idempotent).")


class ServiceFailedError(DeploymentError):
    """The service reached FAILED / INTERNAL_ERROR; ``logs`` holds the tail of its container logs."""

    default_fix = ("Read the service logs above, fix the cause (pool size, GPU count, model id), then re-run with "
                   "--replace.")

    def __init__(self, message: str, *, logs: str = "", fix: str | None = None):
        self.logs = redact(logs)
        super().__init__(message, fix=fix)


class DeploymentTimeoutError(DeploymentError):
    default_fix = (
        "The service is still starting (large images and GPU nodes can take 20+ minutes): re-run `spcs-llm deploy` "
        "to keep waiting, or check SHOW SERVICE CONTAINERS IN SERVICE <service>."
    )


class JsonOutputError(BadResponseError):
    """JSON output was asked for, but the model's reply is not JSON (or does not fit the requested schema)."""

    default_fix = (
        "Serve the model with the vLLM engine (it honours JSON schemas) and set 'Inference engine' to vllm on the "
        "model; otherwise ask for JSON in the prompt itself, or raise max output tokens if the reply was cut."
    )
