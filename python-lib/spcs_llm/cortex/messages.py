"""DSS query messages → chat completions messages for Cortex.

The walk over DSS messages is the DSS contract's (``spcs_llm.dss.messages``); Cortex chooses its form. For a model
that calls tools, tool traffic keeps its structure (OpenAI form): an assistant's ``toolCalls`` become
``tool_calls``, and each ``toolOutputs`` entry a ``tool`` message answering its ``tool_call_id``. For other models
it becomes text, as for SPCS services (``conversation.py``), so that a conversation with earlier tool use can still
be continued in text.

For a model that takes images (``images.py``), a user message's image parts become OpenAI ``image_url`` parts
beside its text parts, in their order, each checked before sending; for the others an image is refused before any
request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.cortex.images import IMAGE_MODELS_AS_OF, openai_content
from spcs_llm.cortex.tool_calls import dss_tool_call
from spcs_llm.dss.conversation import ImageRefusal, normalise
from spcs_llm.dss.messages import check_sendable_messages, messages_from_dss

CORTEX_IMAGES = ImageRefusal(
    "The query contains an image, but this Cortex model takes text only (it is not in the plugin's list of "
    f"image models as of {IMAGE_MODELS_AS_OF}).",
    "Remove the image, or choose a model that takes images (e.g. claude-3-5-sonnet, claude-4-sonnet, "
    "openai-gpt-4.1, pixtral-large); if your model does take images, set 'Model accepts images' to Yes.")
CORTEX_IMAGES_OUTSIDE_USER_TURNS = ImageRefusal(
    "The query has an image in a system, assistant or tool message; Cortex takes images in user messages only.",
    "Move the image into a user message.")


def _api_calls(calls: Sequence[Mapping[str, Any]]) -> list[dict]:
    """DSS ``toolCalls`` with an id (``call_<i>`` when DSS gave none) and JSON-text arguments, as the API takes them."""
    return [
        dss_tool_call(str(call.get("id") or f"call_{i}"), (call.get("function") or {}).get("name") or "",
                      (call.get("function") or {}).get("arguments"))
        for i, call in enumerate(calls)
    ]


def chat_messages(query: Mapping[str, Any], *, structured_tools: bool, images: bool = False) -> list[dict]:
    """The conversation to send; ``structured_tools`` when the request carries tools the model can call, ``images``
    when the model takes images.

    In text form, consecutive turns of one role are merged and the system texts lead (``normalise``).
    """
    refusal = CORTEX_IMAGES_OUTSIDE_USER_TURNS if images else CORTEX_IMAGES
    messages = messages_from_dss(query, refusal, structured_tools=structured_tools, calls_of=_api_calls,
                                 parts_of=openai_content if images else None)
    if not messages:
        raise RequestRejectedError("The query has no messages.", fix="Send at least one user message.")
    check_sendable_messages(messages)
    return messages if structured_tools else normalise(messages)
