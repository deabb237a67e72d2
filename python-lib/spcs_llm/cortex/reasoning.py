"""Reasoning settings per model family, sent with the request; the model's reasoning kept out of the answer.

Cortex documents reasoning controls for its ``inference:complete`` endpoint (snowflakedb/snowflake-rest-api-specs,
``specifications/cortex-inference.yaml``, ``CompleteRequest``): ``anthropic.thinking.budget_tokens`` for Claude and
``openai.reasoning.effort`` (low, medium, high) for OpenAI models. The connector calls the OpenAI-compatible chat
completions endpoint, whose spec (``cortex-generic-openai.yaml``) leaves the body open. There the fields are:

- OpenAI models: OpenAI's own top-level ``reasoning_effort``. Inferred (peer-reported: models.dev PR #2856 says
  Snowflake's Chat Completions page documents ``reasoning_effort`` for OpenAI reasoning models).
- Claude: ``reasoning: {"max_tokens": <budget>}``. Inferred (peer-reported: the same models.dev PR says Snowflake's
  Chat Completions page documents Claude ``reasoning.max_tokens``).

Anthropic's extended-thinking docs require a budget of at least 1,024 tokens and below the request's max tokens;
both are refused before sending. The reasoning text comes back, inferred from OpenAI-compatible servers, as
``reasoning_content`` or ``reasoning`` (a string, or an object with ``summary``/``thinking``, the shapes the
inference:complete spec gives) on the message or the stream's deltas; it goes to the trace, never into the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from spcs_llm.core.errors import ConfigurationError, RequestRejectedError

ReasoningEffort = Literal["low", "medium", "high"]
REASONING_EFFORT_CHOICES: tuple[Literal["off"] | ReasoningEffort, ...] = ("off", *get_args(ReasoningEffort))
MIN_THINKING_BUDGET = 1024
CLAUDE_PREFIX, OPENAI_PREFIX = "claude-", "openai-"


@dataclass(frozen=True)
class ReasoningSettings:
    """What the model is asked to think with: a Claude thinking budget or an OpenAI reasoning effort, or neither."""

    thinking_budget_tokens: int | None = None
    reasoning_effort: ReasoningEffort | None = None

    def check_model(self, model: str) -> None:
        """A setting of another family is refused when the model is configured, not silently dropped."""
        name = model.lower()
        if self.thinking_budget_tokens is not None:
            if not name.startswith(CLAUDE_PREFIX):
                raise ConfigurationError(
                    f"'Thinking budget' is set, but {model} is not a Claude model; it applies to Claude only.",
                    fix="Set 'Thinking budget (tokens)' to 0, or use 'Reasoning effort' for an OpenAI model.")
            if self.thinking_budget_tokens < MIN_THINKING_BUDGET:
                raise ConfigurationError(
                    f"'Thinking budget' is {self.thinking_budget_tokens}; Claude takes at least "
                    f"{MIN_THINKING_BUDGET:,} thinking tokens.",
                    fix=f"Set it to 0 (off) or to {MIN_THINKING_BUDGET:,} or more.")
        if self.reasoning_effort is not None and not name.startswith(OPENAI_PREFIX):
            raise ConfigurationError(
                f"'Reasoning effort' is set, but {model} is not an OpenAI model; it applies to OpenAI models only.",
                fix="Set 'Reasoning effort' to Off, or use 'Thinking budget' for a Claude model.")

    def body_fields(self, max_tokens: int | None) -> dict[str, Any]:
        """The request's reasoning fields (see the module's notes for their sources)."""
        fields: dict[str, Any] = {}
        if self.thinking_budget_tokens is not None:
            if max_tokens is not None and self.thinking_budget_tokens >= max_tokens:
                raise RequestRejectedError(
                    f"The thinking budget ({self.thinking_budget_tokens:,} tokens) must be below the max output "
                    f"tokens ({max_tokens:,}): Claude's thinking counts toward them.",
                    fix="Raise the max output tokens (or 'Default max output tokens') above the thinking budget, or "
                        "lower 'Thinking budget (tokens)'.")
            fields["reasoning"] = {"max_tokens": self.thinking_budget_tokens}
        if self.reasoning_effort is not None:
            fields["reasoning_effort"] = self.reasoning_effort
        return fields


def reasoning_text(item: Mapping[str, Any]) -> str:
    """The reasoning a message or stream delta carries, or "" (inferred field names, see the module notes)."""
    value = item.get("reasoning_content")
    if value is None:
        value = item.get("reasoning")
    if isinstance(value, Mapping):
        value = value.get("thinking") if value.get("thinking") is not None else value.get("summary")
    return value if isinstance(value, str) else ""
