"""Generation parameters and usage as both backends speak them, and DSS completion settings → those parameters.

Both backends take OpenAI chat-completion controls (SPCS: snowflake-ml's ``openai_signatures.py`` params; Cortex:
``/api/v2/cortex/v1/chat/completions``, documented by Snowflake as OpenAI-compatible), so the settings are read
once here. What a backend cannot do (SPCS services call no tools) it refuses in its own adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.tokens import TokenCounter
from spcs_llm.dss.generation_settings import check_generation_settings


@dataclass(frozen=True)
class GenerationParams:
    """Generation controls as the caller gives them; None means "leave the service's default"."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: dict | None = None


@dataclass(frozen=True)
class Usage:
    """Token usage as a service reports it (exact, unlike our own counts)."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def openai_generation_fields(params: GenerationParams) -> dict[str, Any]:
    """The OpenAI chat-completion fields a query sets; unset ones are left out, so the service's defaults apply."""
    fields = {
        "temperature": params.temperature,
        "max_completion_tokens": params.max_tokens,
        "top_p": params.top_p,
        "stop": list(params.stop) or None,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "response_format": params.response_format,
    }
    return {name: value for name, value in fields.items() if value is not None}


def response_format_from_settings(settings: Mapping[str, Any]) -> dict | None:
    """DSS ``responseFormat`` → an OpenAI ``response_format`` (json_schema when a schema is given)."""
    wanted = settings.get("responseFormat")
    if not wanted or wanted.get("type") != "json":
        return None
    if wanted.get("schema"):
        return {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": wanted["schema"], "strict": bool(wanted.get("strict"))},
        }
    return {"type": "json_object"}  # SPCS sends it as a json_schema for any object (spcs/json_output.py)


def params_from_settings(settings: Mapping[str, Any] | None) -> GenerationParams:
    """DSS completion settings → generation parameters (the SPCS and the Cortex chat both call this).

    Every setting is checked first (``generation_settings.check_generation_settings``): a wrong type or a value out
    of range is refused before any request. Missing keys mean "service default"; 0 max tokens = unset. Tools are
    not looked at: whether a backend can call them is its adapter's decision.
    """
    settings = settings or {}
    checked = check_generation_settings(settings)
    return GenerationParams(
        max_tokens=checked.get("maxOutputTokens") or None,
        temperature=checked.get("temperature"),
        top_p=checked.get("topP"),
        stop=checked.get("stopSequences", ()),
        presence_penalty=checked.get("presencePenalty"),
        frequency_penalty=checked.get("frequencyPenalty"),
        response_format=response_format_from_settings(settings),
    )


def token_counts(usage: Usage | None, counter: TokenCounter, prompt_text: str,
                 completion_text: str) -> tuple[int, int, bool]:
    """Prompt and completion tokens, and whether they are estimates: the service's usage, else our counter."""
    if usage is not None:
        return usage.prompt_tokens, usage.completion_tokens, False
    return counter.count(prompt_text), counter.count(completion_text), not counter.exact
