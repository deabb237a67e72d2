"""The DSS contract ↔ the Cortex clients: what the thin ``python-llms/cortex-*`` components call.

Responses follow the DSS contract both backends share (``spcs_llm.dss``: footers, traces, the embedding flow),
plus ``toolCalls``: in a non-streamed answer beside the text, and in a stream as one
``{"chunk": {"toolCalls": [...]}}`` of whole calls before the footer (DSS reads tool calls from chunks only). A
model without a known price reports no ``estimatedCost`` (and says why in the trace) rather than a cost of 0.
The model's reasoning (a Claude thinking budget or an OpenAI reasoning effort was set) goes to the span's outputs,
never into the answer: DSS documents no response field for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from spcs_llm.cortex.client import (
    CortexChatClient,
    CortexChatRequest,
    CortexChatResult,
    CortexEmbeddingClient,
    CortexEmbeddingResult,
)
from spcs_llm.cortex.config import parse_cortex_chat_config, parse_cortex_embedding_config
from spcs_llm.cortex.cost import CostEstimate
from spcs_llm.cortex.images import check_image_count, model_accepts_images
from spcs_llm.cortex.messages import chat_messages
from spcs_llm.cortex.tool_calls import tool_request
from spcs_llm.dss.embedding import EmbeddingComponent
from spcs_llm.dss.generation import params_from_settings
from spcs_llm.dss.responses import chat_footer, record_call, traced


def _cost_attributes(cost: CostEstimate) -> dict[str, Any]:
    if cost.dollars is None:
        return {"cortex.costUnknown": cost.unknown_reason}
    return {"cortex.credits": round(cost.credits or 0.0, 9)}


def _outputs(result: CortexChatResult) -> dict[str, Any]:
    """The span's outputs: the answer, and the model's reasoning when it gave any (kept out of the answer)."""
    return {"text": result.text, **({"reasoning": result.reasoning} if result.reasoning else {})}


def image_count(messages: list[dict]) -> int:
    """Image parts in a planned conversation (counted for the trace; the bytes never go there)."""
    return sum(1 for m in messages if isinstance(m.get("content"), list)
               for part in m["content"] if isinstance(part, dict) and part.get("type") == "image_url")


class CortexChatAdapter:
    """Backs the Cortex chat component."""

    def __init__(self, client: CortexChatClient):
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CortexChatAdapter:
        return cls(CortexChatClient(parse_cortex_chat_config(dict(config))))

    def request(self, query: Mapping[str, Any], settings: Mapping[str, Any] | None) -> CortexChatRequest:
        """Plan the request. Refused here, before any request: a required tool the model cannot call, a
        generation setting of the wrong type or out of range (``params_from_settings``, shared with SPCS), an image
        for a text-only model or an image Cortex would refuse (``images.py``), and a thinking budget not below the
        max output tokens."""
        settings = settings or {}
        config = self.client.config
        tools = tool_request(settings, config.model, config.tool_calling)
        params = params_from_settings(settings)
        config.reasoning.body_fields(params.max_tokens or config.default_max_tokens)
        messages = chat_messages(query, structured_tools=bool(tools.tools),
                                 images=model_accepts_images(config.model, config.images))
        check_image_count(config.model, image_count(messages))
        return CortexChatRequest(messages=messages, params=params, tools=tools)

    def _footer(self, result: CortexChatResult) -> dict[str, Any]:
        return chat_footer(result.prompt_tokens, result.completion_tokens, estimated=result.tokens_estimated,
                           cost=result.cost.dollars, finish_reason=result.finish_reason)

    def _attributes(self, request: CortexChatRequest, result: CortexChatResult) -> dict[str, Any]:
        return {
            "cortex.model": self.client.config.model,
            "cortex.images": image_count(request.messages),
            "cortex.attempts": result.attempts,
            "cortex.retryReasons": ",".join(result.retry_reasons),
            "cortex.tokenRenewals": result.renewals,
            "cortex.toolCalls": len(result.tool_calls),
            "cortex.reasoningChars": len(result.reasoning),
            **_cost_attributes(result.cost),
            **self._footer(result),
        }

    def process(self, query: Mapping[str, Any], settings: Mapping[str, Any] | None, trace: Any) -> dict[str, Any]:
        request = self.request(query, settings)
        with traced(trace, "cortex chat completion") as span:
            result = self.client.complete(request)
            record_call(span, self._attributes(request, result), _outputs(result))
        response: dict[str, Any] = {"text": result.text, **self._footer(result)}
        if result.tool_calls:
            response["toolCalls"] = result.tool_calls
        return response

    def process_stream(self, query: Mapping[str, Any], settings: Mapping[str, Any] | None,
                       trace: Any) -> Iterator[dict[str, Any]]:
        request = self.request(query, settings)
        with traced(trace, "cortex chat completion (stream)") as span:
            events = self.client.stream(request)
            try:
                for event in events:
                    if isinstance(event, CortexChatResult):
                        record_call(span, self._attributes(request, event), _outputs(event))
                        yield {"footer": self._footer(event)}
                    elif isinstance(event, list):
                        yield {"chunk": {"toolCalls": event}}
                    elif event:
                        yield {"chunk": {"text": event}}
            finally:
                events.close()


class CortexEmbeddingAdapter(EmbeddingComponent[CortexEmbeddingResult]):
    """Backs the Cortex embedding component."""

    span_name = "cortex embeddings"

    def __init__(self, client: CortexEmbeddingClient):
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CortexEmbeddingAdapter:
        return cls(CortexEmbeddingClient(parse_cortex_embedding_config(dict(config))))

    def embed(self, texts: list[Any]) -> CortexEmbeddingResult:
        return self.client.embed(texts)

    def cost(self, result: CortexEmbeddingResult) -> float | None:
        return result.cost.dollars

    def attributes(self, result: CortexEmbeddingResult) -> dict[str, Any]:
        return {
            "cortex.model": self.client.config.model,
            "cortex.rows": len(result.rows),
            "cortex.failedRows": result.failed,
            "cortex.requests": result.requests,
            "cortex.attempts": result.attempts,
            "promptTokens": result.prompt_tokens,
            "tokenCountsAreEstimated": result.tokens_estimated,
            **_cost_attributes(result.cost),
        }
