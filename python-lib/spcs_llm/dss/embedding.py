"""The DSS embedding component, once for both backends: texts from the query → the backend's client → one vector or
one error per text, with usage and a trace span.

DSS sends ``{"queries": [{"text"}, ...]}`` (``dataikuapi/dss/llm.py``) or a single ``{"text": ...}`` (seen in the
third-party qsun-aidata/dss-ollama-mesh ``llm.py``), and reads back ``responses`` (each an ``embedding`` or an
``errorMessage``, so one bad text fails only its row) or a single ``embedding``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from spcs_llm.core.errors import RequestRejectedError, SpcsLlmError
from spcs_llm.dss.responses import record_call, traced, usage_footer


@dataclass(frozen=True)
class EmbeddingRow:
    """One text's result: exactly one of ``vector`` and ``error`` is set."""

    vector: list[float] | None = None
    error: str | None = None  # the row's message, as DSS shows it (``errorMessage``)
    failure: SpcsLlmError | None = None  # the typed error behind ``error`` (its type, status and fix), if raised

    @classmethod
    def failed(cls, label: int, failure: SpcsLlmError) -> EmbeddingRow:
        """A row that failed with ``failure``: its message names the row, its type and fix are kept."""
        return cls(error=f"Text #{label}: {failure}", failure=failure)


@dataclass(frozen=True)
class UnsupportedInput:
    """An input the caller already knows cannot be embedded; it becomes that row's error, not a failed call."""

    reason: str


IMAGE_QUERY = UnsupportedInput(
    "image inputs cannot be embedded by a text embedding model. Fix: send text, or use an image embedding model."
)


def texts_from_query(query: Mapping[str, Any]) -> tuple[list[Any], bool]:
    """Both embedding input shapes: ``{"queries": [{"text"}, ...]}`` and ``{"text": ...}``; True for the single one.

    An image query becomes an ``UnsupportedInput`` so that it fails its own row only.
    """
    if "queries" in query:
        texts = []
        for item in query.get("queries") or []:
            if isinstance(item, Mapping):
                texts.append(item.get("text") if not item.get("inlineImage") else IMAGE_QUERY)
            else:
                texts.append(item)
        return texts, False
    if "text" in query:
        return [query["text"]], True
    raise RequestRejectedError(
        "The embedding query has neither 'queries' nor 'text'.", fix="Send {'queries': [{'text': ...}, ...]}."
    )


def unembeddable_reason(text: object) -> str | None:
    """Why no embedding model can take ``text`` (with the fix), or None; both backends refuse these rows unsent."""
    if isinstance(text, UnsupportedInput):
        return text.reason
    if not isinstance(text, str):
        return f"expected a text, got {type(text).__name__}. Fix: pass strings only."
    if not text.strip():
        return "the text is empty or only whitespace, so there is nothing to embed. Fix: filter out empty rows."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as bad:
        return (
            f"the text holds invalid Unicode at position {bad.start} (a lone surrogate). "
            "Fix: clean the text (e.g. decode the source with errors='replace')."
        )
    return None


class EmbeddingResult(Protocol):
    """What a backend's embedding client answers, as far as DSS is concerned."""

    @property
    def rows(self) -> Sequence[EmbeddingRow]: ...

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def tokens_estimated(self) -> bool: ...


R = TypeVar("R", bound=EmbeddingResult)


def embedding_response(rows: Sequence[EmbeddingRow], single: bool, usage: dict[str, Any]) -> dict[str, Any]:
    """The DSS answer: per-row ``embedding`` / ``errorMessage``; a single text's error is the call's error."""
    if single:
        row = rows[0]
        if row.failure is not None:
            raise row.failure  # the original typed error, with its fix (a 429 stays a RateLimitedError)
        if row.error:
            raise RequestRejectedError(row.error, fix="")
        return {"embedding": row.vector, **usage}
    responses = [{"embedding": row.vector} if row.error is None else {"errorMessage": row.error} for row in rows]
    return {"responses": responses, **usage}


class EmbeddingComponent(Generic[R]):
    """The ``process`` of an embedding component; a backend says how to embed, price and describe a call."""

    span_name: ClassVar[str]

    def embed(self, texts: list[Any]) -> R:
        raise NotImplementedError

    def cost(self, result: R) -> float | None:
        """The call's estimated cost in dollars; None when unknown (then the footer has no estimatedCost)."""
        raise NotImplementedError

    def attributes(self, result: R) -> dict[str, Any]:
        """The trace span's attributes for a call."""
        raise NotImplementedError

    def process(self, query: Mapping[str, Any], settings: Mapping[str, Any] | None, trace: Any) -> dict[str, Any]:
        texts, single = texts_from_query(query)
        with traced(trace, self.span_name) as span:
            if span is not None:
                span.inputs["rows"] = len(texts)
            result = self.embed(texts)
            record_call(span, self.attributes(result))
        usage = usage_footer(result.prompt_tokens, 0, estimated=result.tokens_estimated, cost=self.cost(result))
        return embedding_response(result.rows, single, usage)
