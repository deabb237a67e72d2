"""DSS query messages → chat completions messages for Cortex.

For a model that calls tools, tool traffic keeps its structure (OpenAI form): an assistant's ``toolCalls`` become
``tool_calls``, and each ``toolOutputs`` entry a ``tool`` message answering its ``tool_call_id``. For other models
it becomes text, as for SPCS services (``conversation.py``), so that a conversation with earlier tool use can still
be continued in text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.cortex.tool_calls import dss_tool_call
from spcs_llm.dss.conversation import (
    ImageRefusal,
    message_text,
    normalise,
    tool_call_text,
    tool_output_text,
    tool_result_text,
)
from spcs_llm.spcs.dss_adapter import IGNORED_ROLES, check_sendable_messages

CORTEX_IMAGES = ImageRefusal("The query contains an image, but this Cortex connection sends text only.",
                             "Remove the image from the query.")


def _api_calls(calls: list[Mapping[str, Any]]) -> list[dict]:
    return [
        dss_tool_call(str(call.get("id") or f"call_{i}"), (call.get("function") or {}).get("name") or "",
                      (call.get("function") or {}).get("arguments"))
        for i, call in enumerate(calls)
    ]


def chat_messages(query: Mapping[str, Any], *, structured_tools: bool) -> list[dict]:
    """The conversation to send; ``structured_tools`` when the request carries tools the model can call."""
    messages: list[dict] = []
    tool_names: dict[str, str] = {}
    for message in query.get("messages") or []:
        role = message.get("role") or "user"
        if role in IGNORED_ROLES:
            continue
        if role == "assistant" and message.get("toolCalls"):
            calls = _api_calls(message["toolCalls"])
            tool_names.update({c["id"]: c["function"]["name"] for c in calls})
            spoken = message.get("content") is not None or message.get("parts")
            said = message_text(message, CORTEX_IMAGES) if spoken else ""
            if structured_tools:
                previous = messages[-1] if messages else None
                if previous and previous["role"] == "assistant" and "tool_calls" not in previous and not said:
                    previous["tool_calls"] = calls  # DSS sends the assistant's words as a separate message before
                else:
                    messages.append({"role": "assistant", "content": said or None, "tool_calls": calls})
            else:
                text = "\n".join(t for t in (said, tool_call_text(calls)) if t)
                messages.append({"role": "assistant", "content": text})
        elif role == "tool" or message.get("toolOutputs"):
            outputs = message.get("toolOutputs") or []
            if structured_tools:
                messages.extend({"role": "tool", "tool_call_id": str(out.get("callId") or ""),
                                 "content": tool_output_text(out, CORTEX_IMAGES)} for out in outputs)
            else:
                named = [(tool_names.get(str(out.get("callId")), str(out.get("callId") or "unnamed tool")),
                          tool_output_text(out, CORTEX_IMAGES)) for out in outputs]
                messages.append({"role": "user", "content": tool_result_text(named)})
        else:
            messages.append({"role": role, "content": message_text(message, CORTEX_IMAGES)})
    if not messages:
        raise RequestRejectedError("The query has no messages.", fix="Send at least one user message.")
    check_sendable_messages(messages)
    return messages if structured_tools else normalise(messages)
