"""JSON output the caller can trust: what to send for a JSON request, and a check of the reply.

snowml's Python engine does not forward ``response_format`` (``huggingface/_utils.py`` ``_resolve_chat_params``
has no such key), so a service on it answers free text; only vLLM-engine services honour
``{"type": "json_schema", ...}`` (the shape of ``_RESPONSE_FORMAT_PARAM_SPEC`` in ``openai_signatures.py``).
Whichever engine answered, a reply to a JSON request is parsed and, when a schema was given, validated, so
free text never reaches DSS as if it were JSON.
"""

from __future__ import annotations

import json
from typing import Any

from spcs_llm.core.errors import JsonOutputError

ANY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}


def wire_response_format(response_format: dict | None) -> dict | None:
    """The ``response_format`` to send a service that honours it: always ``json_schema``.

    The signature names ``json_schema`` only, so a schema-less JSON request (``json_object``, DSS's JSON mode
    without a schema) is sent as a schema accepting any JSON object, which is what OpenAI's JSON mode promises.
    """
    if not response_format or response_format.get("type") != "json_object":
        return response_format
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": ANY_OBJECT_SCHEMA, "strict": False}}


def requested_schema(response_format: dict | None) -> dict | None:
    """The JSON schema a request asks for, or None (no JSON asked for, or any JSON object)."""
    if not response_format:
        return None
    if response_format.get("type") == "json_object":
        return ANY_OBJECT_SCHEMA
    schema = (response_format.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


def check_json_reply(text: str, response_format: dict | None, *, finish_reason: str | None, engine: str) -> None:
    """Raise ``JsonOutputError`` unless ``text`` is the JSON that ``response_format`` asked for."""
    if not response_format or response_format.get("type") not in ("json_object", "json_schema"):
        return
    cut = " The reply was cut at the max output tokens." if finish_reason == "length" else ""
    ignored = (
        " This service's engine (python) ignores response_format, so the model was never constrained to JSON."
        if engine != "vllm" else ""
    )
    fix = None if engine != "vllm" else (
        "Raise max output tokens if the reply was cut; otherwise check the service really runs on the vLLM engine."
    )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:  # the only error json.loads raises for a str
        raise JsonOutputError(
            f"JSON output was requested, but the model's reply is not JSON ({exc.msg}, character {exc.pos})."
            f"{cut}{ignored}",
            fix=fix,
        ) from None
    schema = requested_schema(response_format)
    if schema is None:
        return
    import jsonschema  # only when a schema is asked for

    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "the top level"
        raise JsonOutputError(
            f"The model's JSON reply does not match the requested schema at {where}: {exc.message}.{cut}{ignored}",
            fix=fix,
        ) from None
    except jsonschema.SchemaError as exc:
        raise JsonOutputError(
            f"The requested JSON schema is not valid: {exc.message}.",
            fix="Correct the JSON schema given in the query's response format.",
        ) from None
