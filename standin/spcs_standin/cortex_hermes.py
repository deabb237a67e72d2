"""The model's text → OpenAI ``tool_calls``, the way vLLM's ``hermes`` tool parser reads Hermes-style models.

vLLM (``vllm/entrypoints/openai/tool_parsers/hermes_tool_parser.py``, read through the public repository) takes
each ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` block of the output as one call; the text before
the first block is the message ``content`` (None when empty); output whose blocks are not valid JSON is returned as
plain content. When streaming it sends text deltas until a block opens, then per call one delta with ``index``,
``id``, ``type`` and the function ``name``, then the ``arguments`` text in fragments as the model writes it.

Inferred: that Cortex's own models stream tool calls in this OpenAI form; the Cortex docs only promise an
OpenAI-compatible endpoint (https://docs.snowflake.com/en/user-guide/snowflake-cortex/open_ai_sdk).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from spcs_standin.tinytools import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CALL_CLOSE) + r"|\Z)", re.DOTALL)
# The part of a block before the arguments' text: `{"name": "<name>", "arguments": `.
_HEADER = re.compile(r'\s*\{\s*"name"\s*:\s*"([^"]+)"\s*,\s*"arguments"\s*:\s*')


def new_call_id() -> str:
    return f"chatcmpl-tool-{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ParsedOutput:
    content: str | None
    tool_calls: list[dict[str, Any]]


def parse_output(text: str) -> ParsedOutput:
    """A whole completion → content and calls (non-streamed answers)."""
    if TOOL_CALL_OPEN not in text:
        return ParsedOutput(text, [])
    calls = []
    for block in _BLOCK.findall(text):
        try:
            parsed = json.loads(block)
            name, arguments = parsed["name"], parsed.get("arguments", {})
        except (ValueError, KeyError, TypeError):
            return ParsedOutput(text, [])  # hermes_tool_parser: unparsable calls are returned as content
        calls.append({"id": new_call_id(), "type": "function",
                      "function": {"name": str(name), "arguments": json.dumps(arguments, ensure_ascii=False)}})
    content = text[:text.index(TOOL_CALL_OPEN)]
    return ParsedOutput(content if content.strip() else None, calls)


@dataclass
class _StreamedCall:
    call_id: str
    name_sent: bool = False
    arguments_sent: str = ""


@dataclass
class StreamingToolParser:
    """Turns growing model output into OpenAI stream deltas: ``{"content": ...}`` or ``{"tool_calls": [...]}``.

    ``feed`` takes the next piece of text and returns the deltas it completes; the caller sends each as a chunk.
    Held back until known: a possibly half-written opening tag, the closing ``}`` of a call's JSON and its
    closing tag, so every fragment sent is a prefix of the final arguments text.
    """

    text: str = ""
    content_sent: int = 0
    calls: list[_StreamedCall] = field(default_factory=list)

    def feed(self, piece: str, *, final: bool = False) -> list[dict[str, Any]]:
        self.text += piece
        deltas: list[dict[str, Any]] = []
        opened = self.text.find(TOOL_CALL_OPEN)
        content_end = opened if opened >= 0 else len(self.text) - (0 if final else _partial_tag(self.text))
        if content_end > self.content_sent and not self.calls:
            deltas.append({"content": self.text[self.content_sent:content_end]})
            self.content_sent = content_end
        if opened < 0:
            return deltas
        for index, match in enumerate(_BLOCK.finditer(self.text, opened)):
            closed = self.text.endswith(TOOL_CALL_CLOSE, 0, match.end())
            deltas.extend(self._call_deltas(index, match.group(1), closed or final))
        return deltas

    def _call_deltas(self, index: int, block: str, closed: bool) -> list[dict[str, Any]]:
        header = _HEADER.match(block)
        if header is None:
            return []
        if index == len(self.calls):
            self.calls.append(_StreamedCall(new_call_id()))
        call = self.calls[index]
        deltas = []
        if not call.name_sent:
            call.name_sent = True
            deltas.append({"tool_calls": [{"index": index, "id": call.call_id, "type": "function",
                                           "function": {"name": header.group(1), "arguments": ""}}]})
        rest = block[header.end():]
        if closed:
            arguments = rest[:rest.rfind("}")].rstrip() if "}" in rest else rest
        else:
            arguments = rest.split("<", 1)[0].rstrip("}\n\t ")
        if arguments.startswith(call.arguments_sent) and len(arguments) > len(call.arguments_sent):
            fragment = arguments[len(call.arguments_sent):]
            call.arguments_sent = arguments
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        return deltas


def _partial_tag(text: str) -> int:
    """How many trailing characters could be the start of an opening tool-call tag."""
    for size in range(min(len(TOOL_CALL_OPEN) - 1, len(text)), 0, -1):
        if TOOL_CALL_OPEN.startswith(text[-size:]):
            return size
    return 0
