"""The DSS contract (Dataiku developer guide, "Creating a custom LLM Connection") ↔ library values.

This is what the thin llm.py files call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.core.redaction import get_logger, redact
from spcs_llm.dss.conversation import ImageRefusal, message_text, tool_call_text, tool_output_text, tool_result_text
from spcs_llm.dss.generation_settings import check_generation_settings
from spcs_llm.spcs.chat import ChatClient, ChatResult
from spcs_llm.spcs.config import parse_chat_config, parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingBatchResult, EmbeddingClient, UnsupportedInput
from spcs_llm.spcs.protocol import GenerationParams

log = get_logger(__name__)

IGNORED_ROLES = {"memoryFragment", "toolValidationRequests", "toolValidationResponses"}
IMAGE_QUERY = UnsupportedInput(
    "image inputs cannot be embedded by a text embedding model. Fix: send text, or use an image embedding model."
)


SPCS_IMAGES = ImageRefusal("The query contains an image, but SPCS chat services take text only.",
                           "Remove the image, or use a multimodal connection.")


def messages_from_query(query: Mapping[str, Any]) -> list[dict[str, str]]:
    """DSS messages → plain ``{"role", "content"}`` messages (system, user, assistant).

    The services have no tool roles, so tool traffic becomes text the model can follow: an assistant's
    ``toolCalls`` become assistant text naming each tool and its arguments, and a ``tool`` message's
    ``toolOutputs`` become a user turn labelled with the tool's name (``conversation.py``). DSS 15 agent-only
    roles are skipped.
    """
    messages = []
    tool_names: dict[str, str] = {}
    for message in query.get("messages") or []:
        role = message.get("role") or "user"
        if role in IGNORED_ROLES:
            continue
        if role == "assistant" and message.get("toolCalls"):
            calls = message["toolCalls"]
            tool_names.update({str(c.get("id")): (c.get("function") or {}).get("name") or "unnamed tool" for c in calls})
            said = message_text(message, SPCS_IMAGES) if message.get("content") is not None or message.get("parts") else ""
            messages.append({"role": "assistant", "content": "\n".join(t for t in (said, tool_call_text(calls)) if t)})
        elif role == "tool" or message.get("toolOutputs"):
            outputs = [
                (tool_names.get(str(out.get("callId")), str(out.get("callId") or "unnamed tool")), tool_output_text(out, SPCS_IMAGES))
                for out in message.get("toolOutputs") or []
            ]
            messages.append({"role": "user", "content": tool_result_text(outputs)})
        else:
            messages.append({"role": role, "content": message_text(message, SPCS_IMAGES)})
    check_sendable_messages(messages)
    return messages


def check_sendable_messages(messages: list[dict]) -> None:
    """Refuse, before sending, a conversation no model can read or answer usefully (the Cortex chat reuses it).

    A ``None`` content (an assistant turn that only calls tools) counts as no text.
    """
    for position, message in enumerate(messages):
        try:
            (message.get("content") or "").encode("utf-8")
        except UnicodeEncodeError as bad:
            raise RequestRejectedError(
                f"Message {position} holds invalid Unicode at character {bad.start} (a lone surrogate), which no "
                "model service can read.",
                fix="Clean the text before sending it (e.g. decode its source with errors='replace').",
            ) from None
    if not any(m["role"] == "user" and (m.get("content") or "").strip() for m in messages):
        raise RequestRejectedError(
            "The query has no user message with text.", fix="Send at least one non-empty user message."
        )


def _response_format(settings: Mapping[str, Any]) -> dict | None:
    wanted = settings.get("responseFormat")
    if not wanted or wanted.get("type") != "json":
        return None
    if wanted.get("schema"):
        return {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": wanted["schema"], "strict": bool(wanted.get("strict"))},
        }
    return {"type": "json_object"}  # sent as a json_schema for any object, to services that honour it (json_output.py)


def params_from_settings(settings: Mapping[str, Any] | None) -> GenerationParams:
    """DSS completion settings → generation parameters (the SPCS and the Cortex chat both call this).

    Every setting is checked first (``generation_settings.check_generation_settings``): a wrong type or a value out
    of range is refused before any request. Missing keys mean "service default"; 0 max tokens = unset.
    """
    settings = settings or {}
    tool_choice = (settings.get("toolChoice") or {}).get("type")
    if settings.get("tools") and tool_choice in ("required", "tool_name"):
        raise RequestRejectedError(
            "This query requires a tool call, but SPCS model services do not support tool calling.",
            fix="Use this model without tools, or with toolChoice auto.",
        )
    checked = check_generation_settings(settings)
    return GenerationParams(
        max_tokens=checked.get("maxOutputTokens") or None,
        temperature=checked.get("temperature"),
        top_p=checked.get("topP"),
        stop=checked.get("stopSequences", ()),
        presence_penalty=checked.get("presencePenalty"),
        frequency_penalty=checked.get("frequencyPenalty"),
        response_format=_response_format(settings),
    )


def usage_fields(prompt_tokens: int, completion_tokens: int, cost: float, estimated: bool) -> dict[str, Any]:
    return {
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "totalTokens": prompt_tokens + completion_tokens,
        "estimatedCost": cost,
        "tokenCountsAreEstimated": estimated,
    }


def _chat_footer(result: ChatResult) -> dict[str, Any]:
    footer = usage_fields(result.prompt_tokens, result.completion_tokens, result.estimated_cost, result.tokens_estimated)
    if result.finish_reason:
        footer["finishReason"] = result.finish_reason
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
    """Put a call's attributes (and outputs) on its trace span, when DSS gave one."""
    if span is None:
        return
    span.attributes.update({key: redact(value) if isinstance(value, str) else value for key, value in attributes.items()})
    if outputs:
        span.outputs.update(outputs)


def _call_attributes(endpoint: EndpointConfig, result: ChatResult | EmbeddingBatchResult) -> dict[str, Any]:
    """Trace attributes every call shares: where it went, and what the transport had to do to get an answer."""
    return {
        "spcs.endpoint": endpoint.host,
        "spcs.route": endpoint.route,
        "spcs.attempts": result.attempts,
        "spcs.retries": len(result.retry_reasons),
        "spcs.retryReasons": ",".join(result.retry_reasons),
        "spcs.tokenRenewals": result.renewals,
        "spcs.busySeconds": round(result.busy_seconds, 6),
        # How long the call waited for a suspended service to resume (0 when it was running).
        "spcs.coldStartWaitSeconds": round(result.cold_start_wait_seconds, 3),
    }


class ChatAdapter:
    """Backs the chat component: DSS query + settings → ChatClient → DSS response dicts."""

    def __init__(self, client: ChatClient):
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ChatAdapter:
        return cls(ChatClient(parse_chat_config(dict(config))))

    def _attributes(self, result: ChatResult) -> dict[str, Any]:
        return {
            **_call_attributes(self.client.config.endpoint, result),
            "spcs.protocol": result.protocol,
            **_chat_footer(result),
        }

    def process(self, query: Mapping[str, Any], settings: Mapping[str, Any] | None, trace: Any) -> dict[str, Any]:
        messages = messages_from_query(query)
        params = params_from_settings(settings)
        with traced(trace, "spcs-llm chat completion") as span:
            if span is not None:
                span.inputs["messageCount"] = len(messages)
            result = self.client.complete(messages, params)
            record_call(span, self._attributes(result), {"text": result.text})
        return {"text": result.text, **_chat_footer(result)}

    def process_stream(
        self, query: Mapping[str, Any], settings: Mapping[str, Any] | None, trace: Any
    ) -> Iterator[dict[str, Any]]:
        messages = messages_from_query(query)
        params = params_from_settings(settings)
        with traced(trace, "spcs-llm chat completion (stream)") as span:
            for event in self.client.stream(messages, params):
                if isinstance(event, ChatResult):
                    record_call(span, self._attributes(event), {"text": event.text})
                    yield {"footer": _chat_footer(event)}
                elif event:
                    yield {"chunk": {"text": event}}


def texts_from_query(query: Mapping[str, Any]) -> tuple[list[Any], bool]:
    """Both embedding input shapes: ``{"queries": [{"text"}, ...]}`` and ``{"text": ...}``.

    Seen in a third-party plugin (qsun-aidata/dss-ollama-mesh ``llm.py``); the batch shape mirrors
    ``dataikuapi/dss/llm.py``.
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


class EmbeddingAdapter:
    """Backs the embedding component: one DSS call embeds all its texts in batched, parallel requests."""

    def __init__(self, client: EmbeddingClient):
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EmbeddingAdapter:
        return cls(EmbeddingClient(parse_embedding_config(dict(config))))

    def process(self, query: Mapping[str, Any], settings: Mapping[str, Any] | None, trace: Any) -> dict[str, Any]:
        texts, single = texts_from_query(query)
        with traced(trace, "spcs-llm embeddings") as span:
            if span is not None:
                span.inputs["rows"] = len(texts)
            result = self.client.embed(texts)
            record_call(span, self._attributes(result))
        usage = usage_fields(result.prompt_tokens, 0, result.estimated_cost, result.tokens_estimated)
        if single:
            row = result.rows[0]
            if row.error:
                raise RequestRejectedError(row.error, fix="")
            return {"embedding": row.vector, **usage}
        responses = [{"embedding": row.vector} if row.error is None else {"errorMessage": row.error} for row in result.rows]
        return {"responses": responses, **usage}

    def _attributes(self, result: EmbeddingBatchResult) -> dict[str, Any]:
        return {
            **_call_attributes(self.client.config.endpoint, result),
            "spcs.rows": len(result.rows),
            "spcs.failedRows": result.failed,
            "spcs.requests": result.requests,
            "promptTokens": result.prompt_tokens,
            "estimatedCost": result.estimated_cost,
            "tokenCountsAreEstimated": result.tokens_estimated,
        }
