"""Fit a conversation to what strict chat templates accept, before it is sent or rendered.

The Llama 2 and Mistral templates (``tokenizer_config.json`` ``chat_template``) raise "Conversation roles must
alternate user/assistant/user/assistant/..." unless an optional leading system message is followed by strictly
alternating user/assistant turns, and Mistral's first revisions raise for any system message. Agent
conversations break both rules: tool calls and tool results have no role these templates know, and a tool
result followed by the user's next question makes two user turns in a row. This module turns such a
conversation into one every template accepts, on both the OpenAI-chat path (the service applies the model's
template) and the text-generation path (``templates.render_chat``):

- an assistant tool call becomes assistant text naming the tool and its JSON arguments;
- a tool result becomes a user turn labelled as that tool's output;
- consecutive turns of the same role are merged, separated by a blank line;
- all system texts become one leading system message, or (``fold_system``) the first paragraph of the first
  user turn, for templates with no system role.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import RequestRejectedError

TURN_SEPARATOR = "\n\n"


def tool_call_text(calls: Iterable[Mapping[str, Any]]) -> str:
    """An assistant's tool calls as the text the model reads: one line per call, name then JSON arguments."""
    lines = []
    for call in calls:
        function = call.get("function") or {}
        name = function.get("name") or "unnamed tool"
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
        lines.append(f"[Tool call] {name}({arguments})")
    return "\n".join(lines)


def tool_result_text(outputs: Iterable[tuple[str, str]]) -> str:
    """Tool results as a user turn's text: each ``(tool name, output)`` labelled so it cannot pass for the user."""
    return "\n".join(f"[Output of tool {name}]\n{output}" for name, output in outputs)


def normalise(messages: Sequence[Mapping[str, Any]], *, fold_system: bool = False) -> list[dict[str, Any]]:
    """``{"role", "content": str}`` messages (system/user/assistant) → the form strict templates accept. A user
    turn's content may be a list of content parts (text and images, for a backend that sends images).

    System texts are joined into one leading system message (strict templates accept one only there), or with
    ``fold_system`` put before the first user turn's text (a user turn holding only them is added when the
    conversation starts with the assistant). Consecutive user or assistant turns are merged. Whether the
    conversation starts and ends with a user turn is left to the caller: permissive templates do not mind.
    """
    system_texts = [m["content"] for m in messages if m["role"] == "system" and m["content"].strip()]
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "system":
            continue
        if turns and turns[-1]["role"] == message["role"]:
            turns[-1] = {"role": message["role"], "content": _joined(turns[-1]["content"], message["content"])}
        else:
            turns.append({"role": message["role"], "content": message["content"]})
    if not system_texts:
        return turns
    system_text = TURN_SEPARATOR.join(system_texts)
    if not fold_system:
        return [{"role": "system", "content": system_text}, *turns]
    if turns and turns[0]["role"] == "user":
        return [{"role": "user", "content": _joined(system_text, turns[0]["content"])}, *turns[1:]]
    return [{"role": "user", "content": system_text}, *turns]


def _joined(first: str | list[dict], second: str | list[dict]) -> str | list[dict]:
    """Two turns' contents as one: texts joined by a blank line; content parts (a turn with images) kept in order."""
    if isinstance(first, str) and isinstance(second, str):
        return first + TURN_SEPARATOR + second
    head = [{"type": "text", "text": first + TURN_SEPARATOR}] if isinstance(first, str) else list(first)
    tail = [{"type": "text", "text": TURN_SEPARATOR + second}] if isinstance(second, str) else list(second)
    return [*head, *tail]


@dataclass(frozen=True)
class ImageRefusal:
    """What a text-only connection says when a DSS message carries an image."""

    message: str
    fix: str


def message_text(message: Mapping[str, Any], images: ImageRefusal) -> str:
    """Text of one DSS message: ``content``, else its TEXT parts (as TS-MESH does); an image part is refused."""
    if message.get("content") is not None:
        return str(message["content"])
    parts = message.get("parts") or []
    if any(part.get("type") in ("IMAGE_INLINE", "IMAGE_URI") for part in parts):
        raise RequestRejectedError(images.message, fix=images.fix)
    return "\n".join(str(part.get("text") or "") for part in parts if part.get("type") == "TEXT")


def tool_output_text(output: Mapping[str, Any], images: ImageRefusal) -> str:
    """One DSS tool output: its ``output`` string, else its TEXT parts (multipart tool outputs, DSS 15)."""
    if output.get("output") is not None:
        return str(output["output"])
    return message_text({"parts": output.get("parts") or []}, images)
