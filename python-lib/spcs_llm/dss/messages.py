"""DSS query messages → chat-completion messages, one walk for both backends.

DSS sends ``{"role", "content" | "parts", "toolCalls", "toolOutputs"}`` messages (Dataiku developer guide,
"Creating a custom LLM Connection"). Tool traffic is written in one of two forms:

- as text (``conversation.py``), for models that call no tools: an assistant's ``toolCalls`` become assistant
  text naming each tool and its arguments, and a ``toolOutputs`` message a user turn labelled with the tool's name;
- structured (OpenAI form), for a request carrying tools the model can call: ``tool_calls`` on the assistant
  message and one ``tool`` message per output, answering its ``tool_call_id``.

A backend chooses the form, what an image is refused with, how DSS tool calls are normalised (``calls_of``), and,
when it sends images, how a user message's parts become content parts (``parts_of``, given the message's position
for its errors): that message's ``content`` is then a list of parts instead of a string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.dss.conversation import ImageRefusal, message_text, tool_call_text, tool_output_text, tool_result_text

# DSS 15 agent-only roles: bookkeeping of the agent, not turns of the conversation.
IGNORED_ROLES = {"memoryFragment", "toolValidationRequests", "toolValidationResponses"}

CallsHook = Callable[[Sequence[Mapping[str, Any]]], list[dict]]
PartsHook = Callable[[list[Mapping[str, Any]], str], list[dict]]
IMAGE_PART_TYPES = ("IMAGE_INLINE", "IMAGE_URI")


def _as_is(calls: Sequence[Mapping[str, Any]]) -> list[dict]:
    return [dict(call) for call in calls]


def _tool_name(call: Mapping[str, Any]) -> str:
    return (call.get("function") or {}).get("name") or "unnamed tool"


def _has_images(message: Mapping[str, Any]) -> bool:
    return message.get("content") is None and any(
        isinstance(part, Mapping) and part.get("type") in IMAGE_PART_TYPES for part in message.get("parts") or [])


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of content parts."""
    if isinstance(content, list):
        return "\n".join(str(part.get("text") or "") for part in content
                         if isinstance(part, Mapping) and part.get("type") == "text")
    return str(content or "")


def messages_from_dss(query: Mapping[str, Any], images: ImageRefusal, *, structured_tools: bool = False,
                      calls_of: CallsHook = _as_is, parts_of: PartsHook | None = None) -> list[dict]:
    """The conversation to send, DSS agent-only roles skipped; nothing is checked or merged here."""
    messages: list[dict] = []
    tool_names: dict[str, str] = {}
    for position, message in enumerate(query.get("messages") or []):
        role = message.get("role") or "user"
        if role in IGNORED_ROLES:
            continue
        if role == "assistant" and message.get("toolCalls"):
            calls = calls_of(message["toolCalls"])
            tool_names.update({str(call.get("id")): _tool_name(call) for call in calls})
            spoken = message.get("content") is not None or message.get("parts")
            said = message_text(message, images) if spoken else ""
            if not structured_tools:
                text = "\n".join(t for t in (said, tool_call_text(calls)) if t)
                messages.append({"role": "assistant", "content": text})
                continue
            previous = messages[-1] if messages else None
            if previous and previous["role"] == "assistant" and "tool_calls" not in previous and not said:
                previous["tool_calls"] = calls  # DSS sends the assistant's words as a separate message before
            else:
                messages.append({"role": "assistant", "content": said or None, "tool_calls": calls})
        elif role == "tool" or message.get("toolOutputs"):
            outputs = message.get("toolOutputs") or []
            if structured_tools:
                messages.extend({"role": "tool", "tool_call_id": str(out.get("callId") or ""),
                                 "content": tool_output_text(out, images)} for out in outputs)
                continue
            named = [(tool_names.get(str(out.get("callId")), str(out.get("callId") or "unnamed tool")),
                      tool_output_text(out, images)) for out in outputs]
            messages.append({"role": "user", "content": tool_result_text(named)})
        elif parts_of is not None and role == "user" and _has_images(message):
            messages.append({"role": role, "content": parts_of(list(message["parts"]), f"Message {position}")})
        else:
            messages.append({"role": role, "content": message_text(message, images)})
    return messages


def check_sendable_messages(messages: list[dict]) -> None:
    """Refuse, before sending, a conversation no model can read or answer usefully.

    A ``None`` content (an assistant turn that only calls tools) counts as no text; a user turn with an image part
    counts as a question.
    """
    for position, message in enumerate(messages):
        try:
            content_text(message.get("content")).encode("utf-8")
        except UnicodeEncodeError as bad:
            raise RequestRejectedError(
                f"Message {position} holds invalid Unicode at character {bad.start} (a lone surrogate), which no "
                "model service can read.",
                fix="Clean the text before sending it (e.g. decode its source with errors='replace').",
            ) from None
    if not any(m["role"] == "user" and (content_text(m.get("content")).strip() or isinstance(m.get("content"), list))
               for m in messages):
        raise RequestRejectedError(
            "The query has no user message with text.", fix="Send at least one non-empty user message."
        )
