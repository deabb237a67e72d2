"""Reading a streamed Cortex chat completion as it arrives.

The transport hands over the SSE body as an ``EventStream`` that parses each ``data:`` event as soon as its bytes
arrive (``sse.py``: ``iter_content(chunk_size=None)``), so text deltas reach DSS one by one. Tool-call fragments
are assembled across chunks and handed over whole at the end, then one ``StreamEnd`` carries the finish reason and
the usage of the stream's last chunk. Closing the generator early (DSS cancelling, a consumer that stops reading)
closes the HTTP response and frees the endpoint's limiter slot at once.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from spcs_llm.core.http_answers import snippet
from spcs_llm.core.sse import EventStream
from spcs_llm.cortex.errors import CortexStreamError
from spcs_llm.cortex.reasoning import reasoning_text
from spcs_llm.cortex.tool_calls import ToolCallAssembler
from spcs_llm.dss.generation import Usage


@dataclass(frozen=True)
class StreamedText:
    text: str


@dataclass(frozen=True)
class StreamedToolCalls:
    calls: list[dict]


@dataclass(frozen=True)
class StreamEnd:
    text: str
    finish_reason: str | None
    usage: Usage | None
    tool_calls: list[dict] = field(default_factory=list)
    reasoning: str = ""  # the model's reasoning, for the trace only (never part of the answer's text)


def usage_of(payload: Mapping[str, Any]) -> Usage | None:
    usage = payload.get("usage")
    if not isinstance(usage, Mapping) or usage.get("prompt_tokens") is None:
        return None
    return Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                 completion_tokens=int(usage.get("completion_tokens") or 0))


def _mid_stream_error(event: Mapping[str, Any]) -> CortexStreamError:
    # snowflake-ml cortex/_complete.py: the stream "can contain error messages in the middle of the stream" as an
    # event whose JSON has an "error" member (MidStreamException).
    error = event.get("error")
    detail = error.get("message") if isinstance(error, Mapping) else error
    return CortexStreamError(f"Cortex stopped the stream with an error: {snippet(str(detail))!r}.")


def read_chat_stream(events: EventStream) -> Generator[StreamedText | StreamedToolCalls | StreamEnd, None, None]:
    """Text deltas as they come, then the assembled tool calls (if any), then one ``StreamEnd``, last.

    Reasoning deltas are gathered into the ``StreamEnd`` only: they never reach the answer's text.
    """
    assembler = ToolCallAssembler()
    pieces: list[str] = []
    thoughts: list[str] = []
    finish_reason: str | None = None
    usage: Usage | None = None
    try:
        for event in events:
            if not isinstance(event, Mapping):
                continue
            if event.get("error"):
                raise _mid_stream_error(event)
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if isinstance(content, str) and content:
                    pieces.append(content)
                    yield StreamedText(content)
                thoughts.append(reasoning_text(delta))
                if delta.get("tool_calls"):
                    assembler.add(delta["tool_calls"])
                finish_reason = choice.get("finish_reason") or finish_reason
            usage = usage_of(event) or usage
        calls = assembler.calls() if assembler else []
        if calls:
            yield StreamedToolCalls(calls)
        yield StreamEnd(text="".join(pieces), finish_reason=finish_reason, usage=usage, tool_calls=calls,
                        reasoning="".join(thoughts))
    finally:
        events.close()
