"""The Cortex REST endpoints: their routes, request bodies and the parts of their answers we read.

- ``POST /api/v2/cortex/v1/chat/completions``: OpenAI-compatible chat completions (``stream``, ``tools``,
  ``tool_choice``, ``response_format``); answers JSON, or ``text/event-stream`` chunks when streaming.
- ``POST /api/v2/cortex/inference:embed``: ``{"model", "text": [...]}`` → ``data[i].embedding`` (+ ``index``) and
  ``usage.total_tokens`` (Cortex Embed API OpenAPI spec).
- ``POST /api/v2/cortex/inference:complete`` (the older, always-streaming form) is not used: chat completions is
  the superset the Cortex docs recommend for all models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import BadResponseError
from spcs_llm.cortex.errors import UNEXPECTED_ANSWER_FIX
from spcs_llm.cortex.reasoning import ReasoningSettings
from spcs_llm.cortex.tool_calls import ToolRequest
from spcs_llm.dss.generation import GenerationParams, openai_generation_fields

CHAT_COMPLETIONS_ROUTE = "api/v2/cortex/v1/chat/completions"
EMBED_ROUTE = "api/v2/cortex/inference:embed"


def chat_completions_body(model: str, messages: Sequence[dict], params: GenerationParams, tools: ToolRequest,
                          *, stream: bool, reasoning: ReasoningSettings | None = None) -> dict[str, Any]:
    """An OpenAI-style request; unset controls are left out so the model's defaults apply. Images are already
    content parts of the user messages (``images.py``); reasoning settings add their fields (``reasoning.py``)."""
    body: dict[str, Any] = {"model": model, "messages": list(messages), "stream": stream}
    if stream:
        # Inferred: Cortex accepts OpenAI's stream_options (it documents the endpoint as a superset of OpenAI's);
        # it makes the last chunk carry the exact usage for the footer.
        body["stream_options"] = {"include_usage": True}
    body.update(openai_generation_fields(params))
    body.update(tools.body_fields())
    if reasoning is not None:
        body.update(reasoning.body_fields(params.max_tokens))
    return body


def embed_body(model: str, texts: Sequence[str]) -> dict[str, Any]:
    return {"model": model, "text": list(texts)}


@dataclass(frozen=True)
class EmbedAnswer:
    vectors: list[list[float]]
    total_tokens: int | None


def _vector(value: Any) -> list[float]:
    # The Embed API spec types `embedding` as a nested array (one vector per input, wrapped); accept both forms.
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) for x in value):
        raise BadResponseError("Cortex answered an embedding that is not a list of numbers.", fix=UNEXPECTED_ANSWER_FIX)
    return [float(x) for x in value]


def parse_embed_answer(payload: Any, expected: int) -> EmbedAnswer:
    """The vectors in input order (by ``index``), and the billed tokens."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, list) or len(data) != expected:
        got = len(data) if isinstance(data, list) else "no"
        raise BadResponseError(f"Cortex answered {got} embeddings for {expected} texts.", fix=UNEXPECTED_ANSWER_FIX)
    ordered: list[list[float] | None] = [None] * expected
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, Mapping) else position
        if not isinstance(index, int) or not 0 <= index < expected or ordered[index] is not None:
            raise BadResponseError(f"Cortex answered an embedding with a bad index {index!r}.",
                                   fix=UNEXPECTED_ANSWER_FIX)
        ordered[index] = _vector(item.get("embedding") if isinstance(item, Mapping) else None)
    usage = payload.get("usage") or {}
    total = usage.get("total_tokens")
    return EmbedAnswer(vectors=[v for v in ordered if v is not None],
                       total_tokens=int(total) if total is not None else None)
