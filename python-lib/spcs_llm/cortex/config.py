"""Cortex model settings: DSS ``config`` dicts (llm.json params + resolved presets) → validated dataclasses.

Authentication reuses the SPCS presets (``parse_auth``); the endpoint is the account URL itself, since the Cortex
REST API lives at ``https://<account>.snowflakecomputing.com/api/v2/cortex/...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from spcs_llm.core.config import (
    DEFAULT_MAX_PARALLELISM,
    AuthConfig,
    EndpointConfig,
    choice_setting,
    normalise_url,
    number_setting,
    parse_auth,
    text_setting,
)
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.cortex.images import IMAGE_SETTING_CHOICES, ImageSetting
from spcs_llm.cortex.reasoning import REASONING_EFFORT_CHOICES, ReasoningSettings

ToolCalling = Literal["auto", "supported", "unsupported"]
TOOL_CALLING_CHOICES: tuple[ToolCalling, ...] = get_args(ToolCalling)

# Inferred: the Cortex REST API has no documented per-request time limit; generation streams, so the read timeout
# bounds the silence between two chunks, and a long non-streamed answer needs more than the SPCS ingress's 60 s.
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_CHAT_MODEL = "claude-3-5-sonnet"
DEFAULT_EMBEDDING_MODEL = "snowflake-arctic-embed-m-v1.5"


@dataclass(frozen=True)
class CortexCostConfig:
    """The model's own rate (credits per million input / output tokens) when set, else the shipped table."""

    input_credits_per_million: float | None = None
    output_credits_per_million: float | None = None
    dollars_per_credit: float = 3.0


@dataclass(frozen=True)
class CortexChatConfig:
    endpoint: EndpointConfig
    auth: AuthConfig
    cost: CortexCostConfig
    model: str
    default_max_tokens: int = 1024
    tool_calling: ToolCalling = "auto"  # whether the model can call tools: auto = the shipped capability list
    tokenizer: str | None = None
    images: ImageSetting = "auto"  # whether the model takes images: auto = the shipped, dated list (images.py)
    reasoning: ReasoningSettings = ReasoningSettings()


@dataclass(frozen=True)
class CortexEmbeddingConfig:
    endpoint: EndpointConfig
    auth: AuthConfig
    cost: CortexCostConfig
    model: str
    rows_per_request: int = 64
    tokenizer: str | None = None


def parse_account_endpoint(config: dict, auth: AuthConfig) -> EndpointConfig:
    """The account URL (from the preset, else the model's 'Snowflake account URL') as the endpoint's base URL.

    Cortex answers no cold starts (no service to resume) and a 403 means a missing grant, not routing that is
    still propagating: neither gets the SPCS waits, as Cortex's backend profile declares (``cortex/errors.py``).
    """
    if not auth.account_url:
        raise ConfigurationError(
            "No Snowflake account URL is set.",
            fix="Set 'Snowflake account URL' (https://<account>.snowflakecomputing.com) in the preset or the model.",
        )
    base = normalise_url(auth.account_url, what="account URL")
    return EndpointConfig(
        base_url=base,
        route="api/v2/cortex",
        connect_timeout=number_setting(config, "connect_timeout", 10.0, minimum=0.1),
        read_timeout=number_setting(config, "read_timeout", DEFAULT_READ_TIMEOUT, minimum=0.1),
        max_parallelism=number_setting(config, "max_parallelism", DEFAULT_MAX_PARALLELISM, minimum=1, cast=int),
        max_attempts=number_setting(config, "max_attempts", 6, minimum=1, cast=int),
        max_retry_seconds=number_setting(config, "max_retry_seconds", 120.0, minimum=0),
    )


def parse_cortex_cost(config: dict) -> CortexCostConfig:
    """0 or empty overrides mean "use the shipped table"."""
    input_rate = number_setting(config, "input_credits_per_million", 0.0, minimum=0.0)
    output_rate = number_setting(config, "output_credits_per_million", 0.0, minimum=0.0)
    return CortexCostConfig(
        input_credits_per_million=input_rate or None,
        output_credits_per_million=output_rate or None,
        dollars_per_credit=number_setting(config, "dollars_per_credit", 3.0, minimum=0.0),
    )


def _model(config: dict, default: str) -> str:
    model = text_setting(config, "model") or default
    if any(ch.isspace() for ch in model):
        raise ConfigurationError(
            f"The model name {model!r} contains spaces.",
            fix="Use a Cortex model name such as claude-3-5-sonnet, or a fine-tuned model's fully qualified name "
            "(DATABASE.SCHEMA.MODEL).",
        )
    return model


def parse_reasoning(config: dict, model: str, default_max_tokens: int) -> ReasoningSettings:
    """'Thinking budget (tokens)' (0 = off) and 'Reasoning effort' (off when unset), checked against the model and
    the default max output tokens (the budget must fit below them)."""
    budget = number_setting(config, "thinking_budget_tokens", 0, minimum=0, cast=int)
    effort = choice_setting(config, "reasoning_effort", REASONING_EFFORT_CHOICES, "off")
    settings = ReasoningSettings(thinking_budget_tokens=budget or None,
                                 reasoning_effort=None if effort == "off" else effort)
    settings.check_model(model)
    if budget and budget >= default_max_tokens:
        raise ConfigurationError(
            f"'Thinking budget (tokens)' ({budget}) must be below 'Default max output tokens' ({default_max_tokens}): "
            "Claude's thinking counts toward the output tokens.",
            fix="Raise 'Default max output tokens' above the thinking budget (e.g. budget + 1024).")
    return settings


def parse_cortex_chat_config(config: dict) -> CortexChatConfig:
    auth = parse_auth(config)
    model = _model(config, DEFAULT_CHAT_MODEL)
    default_max_tokens = number_setting(config, "default_max_tokens", 1024, minimum=1, cast=int)
    return CortexChatConfig(
        endpoint=parse_account_endpoint(config, auth),
        auth=auth,
        cost=parse_cortex_cost(config),
        model=model,
        default_max_tokens=default_max_tokens,
        tool_calling=choice_setting(config, "tool_calling", TOOL_CALLING_CHOICES, "auto"),
        tokenizer=text_setting(config, "tokenizer"),
        images=choice_setting(config, "accepts_images", IMAGE_SETTING_CHOICES, "auto"),
        reasoning=parse_reasoning(config, model, default_max_tokens),
    )


def parse_cortex_embedding_config(config: dict) -> CortexEmbeddingConfig:
    auth = parse_auth(config)
    return CortexEmbeddingConfig(
        endpoint=parse_account_endpoint(config, auth),
        auth=auth,
        cost=parse_cortex_cost(config),
        model=_model(config, DEFAULT_EMBEDDING_MODEL),
        rows_per_request=number_setting(config, "rows_per_request", 64, minimum=1, cast=int),
        tokenizer=text_setting(config, "tokenizer"),
    )
