"""What every DSS component answers besides its text or vectors: the usage footer and the trace span.

The footer's keys are those DSS reads from a custom LLM's response (Dataiku developer guide, "Creating a custom LLM
Connection": promptTokens, completionTokens, totalTokens, estimatedCost, tokenCountsAreEstimated, finishReason).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from spcs_llm.core.redaction import redact


def usage_footer(prompt_tokens: int, completion_tokens: int, *, estimated: bool,
                 cost: float | None) -> dict[str, Any]:
    """Token counts and cost; a cost of None (a model without a known price) is left out rather than sent as 0."""
    footer: dict[str, Any] = {
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "totalTokens": prompt_tokens + completion_tokens,
    }
    if cost is not None:
        footer["estimatedCost"] = cost
    footer["tokenCountsAreEstimated"] = estimated
    return footer


def chat_footer(prompt_tokens: int, completion_tokens: int, *, estimated: bool, cost: float | None,
                finish_reason: str | None) -> dict[str, Any]:
    """A chat answer's footer: the usage, and the finish reason when the service gave one."""
    footer = usage_footer(prompt_tokens, completion_tokens, estimated=estimated, cost=cost)
    if finish_reason:
        footer["finishReason"] = finish_reason
    return footer


@contextmanager
def traced(trace: Any, name: str) -> Iterator[Any]:
    """A child span of DSS's ``SpanBuilder``, or nothing when DSS passes no trace."""
    if trace is None:
        yield None
        return
    with trace.subspan(name) as span:
        yield span


def record_call(span: Any, attributes: dict[str, Any], outputs: dict[str, Any] | None = None) -> None:
    """Put a call's attributes (and outputs) on its trace span, when DSS gave one; text values are redacted."""
    if span is None:
        return
    span.attributes.update({key: redact(value) if isinstance(value, str) else value
                            for key, value in attributes.items()})
    if outputs:
        span.outputs.update(outputs)
