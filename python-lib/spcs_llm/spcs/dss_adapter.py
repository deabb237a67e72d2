"""The DSS contract (Dataiku developer guide, "Creating a custom LLM Connection") ↔ library values.

This is what the thin llm.py files call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.core.redaction import get_logger
from spcs_llm.dss.conversation import ImageRefusal
from spcs_llm.dss.embedding import EmbeddingComponent
from spcs_llm.dss.generation import GenerationParams, params_from_settings
from spcs_llm.dss.messages import check_sendable_messages, messages_from_dss
from spcs_llm.dss.responses import chat_footer, record_call, traced
from spcs_llm.spcs.chat import ChatClient, ChatResult
from spcs_llm.spcs.config import parse_chat_config, parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingBatchResult, EmbeddingClient

log = get_logger(__name__)

SPCS_IMAGES = ImageRefusal("The query contains an image, but SPCS chat services take text only.",
                           "Remove the image, or use a multimodal connection.")


def messages_from_query(query: Mapping[str, Any]) -> list[dict[str, str]]:
    """DSS messages → plain ``{"role", "content"}`` messages (system, user, assistant).

    The services have no tool roles, so tool traffic becomes text the model can follow (``dss/messages.py``);
    DSS 15 agent-only roles are skipped.
    """
    messages = messages_from_dss(query, SPCS_IMAGES)
    check_sendable_messages(messages)
    return messages


def spcs_params(settings: Mapping[str, Any] | None) -> GenerationParams:
    """DSS completion settings → generation parameters, refusing a query that requires a tool call first: SPCS
    model services call no tools (snowflake-ml's OpenAI chat signature has no ``tools`` param)."""
    settings = settings or {}
    tool_choice = (settings.get("toolChoice") or {}).get("type")
    if settings.get("tools") and tool_choice in ("required", "tool_name"):
        raise RequestRejectedError(
            "This query requires a tool call, but SPCS model services do not support tool calling.",
            fix="Use this model without tools, or with toolChoice auto.",
        )
    return params_from_settings(settings)


def _chat_footer(result: ChatResult) -> dict[str, Any]:
    return chat_footer(result.prompt_tokens, result.completion_tokens, estimated=result.tokens_estimated,
                       cost=result.estimated_cost, finish_reason=result.finish_reason)


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
        params = spcs_params(settings)
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
        params = spcs_params(settings)
        with traced(trace, "spcs-llm chat completion (stream)") as span:
            events = self.client.stream(messages, params)
            try:
                for event in events:
                    if isinstance(event, ChatResult):
                        record_call(span, self._attributes(event), {"text": event.text})
                        yield {"footer": _chat_footer(event)}
                    elif event:
                        yield {"chunk": {"text": event}}
            finally:
                events.close()  # DSS closing this generator early closes the HTTP stream and frees its slot now


class EmbeddingAdapter(EmbeddingComponent[EmbeddingBatchResult]):
    """Backs the embedding component: one DSS call embeds all its texts in batched, parallel requests."""

    span_name = "spcs-llm embeddings"

    def __init__(self, client: EmbeddingClient):
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EmbeddingAdapter:
        return cls(EmbeddingClient(parse_embedding_config(dict(config))))

    def embed(self, texts: list[Any]) -> EmbeddingBatchResult:
        return self.client.embed(texts)

    def cost(self, result: EmbeddingBatchResult) -> float | None:
        return result.estimated_cost

    def attributes(self, result: EmbeddingBatchResult) -> dict[str, Any]:
        return {
            **_call_attributes(self.client.config.endpoint, result),
            "spcs.rows": len(result.rows),
            "spcs.failedRows": result.failed,
            "spcs.requests": result.requests,
            "promptTokens": result.prompt_tokens,
            "estimatedCost": result.estimated_cost,
            "tokenCountsAreEstimated": result.tokens_estimated,
        }
