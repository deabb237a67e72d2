"""Cortex chat and embedding clients: one request plan → the shared transport → results with usage and cost.

They use the shared transport (pooled session, per-endpoint limiter, the one retry policy with Retry-After, token
renewal on 401) with Cortex's backend profile (``cortex/errors.py``): Cortex advice in every error, no cold-start
waits, and a 403 final at once (a missing CORTEX_USER grant, not routing still propagating).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from spcs_llm.core.errors import BadResponseError, SpcsLlmError
from spcs_llm.core.tokens import TokenCounter
from spcs_llm.core.transport import CallResult, Transport
from spcs_llm.cortex.auth import CORTEX_ROLE_FIX, PAT_FIX, cortex_token_source
from spcs_llm.cortex.config import CortexChatConfig, CortexEmbeddingConfig
from spcs_llm.cortex.cost import CortexPricing, CostEstimate
from spcs_llm.cortex.endpoints import (
    CHAT_COMPLETIONS_ROUTE,
    EMBED_ROUTE,
    chat_completions_body,
    embed_body,
    parse_embed_answer,
)
from spcs_llm.cortex.errors import UNEXPECTED_ANSWER_FIX, cortex_profile
from spcs_llm.cortex.reasoning import reasoning_text
from spcs_llm.cortex.streaming import StreamedText, StreamedToolCalls, StreamEnd, read_chat_stream, usage_of
from spcs_llm.cortex.tool_calls import ToolRequest, reply_tool_calls
from spcs_llm.dss.embedding import EmbeddingRow, unembeddable_reason
from spcs_llm.dss.generation import GenerationParams, token_counts
from spcs_llm.dss.messages import content_text

# Inferred: Cortex's handling of a text longer than the embed model's window is not documented to us (it may cut
# it silently); the stricter reading refuses it. 32 KiB of UTF-8 is about 8,000 tokens of English, the widest
# window of the Cortex embed models (snowflake-arctic-embed-l-v2.0); the 512-token models take far less.
MAX_EMBED_TEXT_BYTES = 32_768


@dataclass(frozen=True)
class CortexChatRequest:
    messages: list[dict]
    params: GenerationParams
    tools: ToolRequest = field(default_factory=ToolRequest)


@dataclass(frozen=True)
class CortexChatResult:
    text: str
    tool_calls: list[dict]
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool
    cost: CostEstimate
    attempts: int
    renewals: int
    retry_reasons: tuple[str, ...] = ()
    elapsed_seconds: float = 0.0
    reasoning: str = ""  # the model's reasoning: for the trace, never part of ``text``


def _auth_fix(kind: str) -> str:
    if kind == "pat":
        return PAT_FIX
    if kind == "keypair":
        return ("Register the key's public half for the preset's user (ALTER USER <user> SET RSA_PUBLIC_KEY='…'; "
                "DESC USER shows RSA_PUBLIC_KEY_FP), check the account identifier the JWT names, and: "
                + CORTEX_ROLE_FIX)
    return "Re-authorise in Profile & Settings → Credentials. " + CORTEX_ROLE_FIX


class _CortexClient:
    """What both clients share: the transport for the account, the auth advice, the token counter and prices."""

    def __init__(self, config: CortexChatConfig | CortexEmbeddingConfig, *,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        self.config = config
        self.transport = Transport(config.endpoint, cortex_token_source(config.auth, config.endpoint.base_url),
                                   profile=cortex_profile(_auth_fix(config.auth.kind)), sleep=sleep, rng=rng)
        self.pricing = CortexPricing(config.model, config.cost)
        self.counter = TokenCounter.for_setting(config.tokenizer)

    def _post(self, route: str, body: dict, *, stream: bool = False) -> CallResult:
        return self.transport.post_json(route, body, stream=stream, trace_name=self.config.model)


class CortexChatClient(_CortexClient):
    """Thread-safe; one per configured model."""

    config: CortexChatConfig

    def _body(self, request: CortexChatRequest, *, stream: bool) -> dict:
        params = request.params
        if params.max_tokens is None:
            params = replace(params, max_tokens=self.config.default_max_tokens)
        return chat_completions_body(self.config.model, request.messages, params, request.tools, stream=stream,
                                     reasoning=self.config.reasoning)

    def complete(self, request: CortexChatRequest) -> CortexChatResult:
        call = self._post(CHAT_COMPLETIONS_ROUTE, self._body(request, stream=False))
        return self._result_from_payload(request, call)

    def stream(self, request: CortexChatRequest) -> Generator[str | list[dict] | CortexChatResult, None, None]:
        """Yield text deltas as they arrive, then the tool calls (a list, if any), then the result, last.

        Closing this generator closes the HTTP stream and releases the endpoint's limiter slot.
        """
        call = self._post(CHAT_COMPLETIONS_ROUTE, self._body(request, stream=True), stream=True)
        if call.events is None:  # answered one JSON document: pass it on as one delta
            result = self._result_from_payload(request, call)
            if result.text:
                yield result.text
            if result.tool_calls:
                yield result.tool_calls
            yield result
            return
        with call.events as events:  # closed on the end, an error, or the consumer closing this generator
            parts = read_chat_stream(events)
            try:
                for part in parts:
                    if isinstance(part, StreamedText):
                        yield part.text
                    elif isinstance(part, StreamedToolCalls):
                        yield part.calls
                    elif isinstance(part, StreamEnd):
                        yield self._result(request, call, part)
            finally:
                parts.close()

    def _result_from_payload(self, request: CortexChatRequest, call: CallResult) -> CortexChatResult:
        payload = call.payload if isinstance(call.payload, dict) else {}
        if not payload.get("choices"):
            raise BadResponseError("Cortex answered a chat completion without choices.", fix=UNEXPECTED_ANSWER_FIX)
        choice = payload["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        end = StreamEnd(text=text, finish_reason=choice.get("finish_reason"), usage=usage_of(payload),
                        tool_calls=reply_tool_calls(message), reasoning=reasoning_text(message))
        return self._result(request, call, end)

    def _result(self, request: CortexChatRequest, call: CallResult, end: StreamEnd) -> CortexChatResult:
        """Exact usage from Cortex when it reports it, else counted here and flagged as estimated."""
        prompt_text = "\n".join(content_text(m.get("content")) for m in request.messages)  # no image bytes
        prompt_tokens, completion_tokens, estimated = token_counts(end.usage, self.counter, prompt_text, end.text)
        return CortexChatResult(
            text=end.text, tool_calls=end.tool_calls, finish_reason=end.finish_reason, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, tokens_estimated=estimated,
            cost=self.pricing.estimate(prompt_tokens, completion_tokens), attempts=call.attempts,
            renewals=call.renewals, retry_reasons=tuple(call.retry_reasons), elapsed_seconds=call.elapsed_seconds,
            reasoning=end.reasoning,
        )


def _too_long_reason(text: str) -> str | None:
    size = len(text.encode("utf-8"))
    if size <= MAX_EMBED_TEXT_BYTES:
        return None
    return (f"the text is {size:,} bytes, over the {MAX_EMBED_TEXT_BYTES:,}-byte limit for one Cortex embedding "
            "input (longer texts would not fit the model's window). Fix: split long documents into chunks "
            "(the Embed recipe's text splitter).")


@dataclass(frozen=True)
class CortexEmbeddingResult:
    rows: list[EmbeddingRow]
    prompt_tokens: int
    tokens_estimated: bool
    cost: CostEstimate
    requests: int
    attempts: int

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row.error is not None)


class CortexEmbeddingClient(_CortexClient):
    """Embeds texts in requests of at most 'Rows per request'; a failed request fails only its own rows."""

    config: CortexEmbeddingConfig

    def embed(self, texts: Sequence[Any]) -> CortexEmbeddingResult:
        rows: list[EmbeddingRow | None] = [None] * len(texts)
        sendable = []
        for position, text in enumerate(texts):
            reason = unembeddable_reason(text) or _too_long_reason(text)
            if reason:
                rows[position] = EmbeddingRow(error=f"Text #{position}: {reason}")
            else:
                sendable.append(position)
        tokens, estimated, requests, attempts = 0, False, 0, 0
        size = self.config.rows_per_request
        for start in range(0, len(sendable), size):
            batch = sendable[start:start + size]
            requests += 1
            try:
                call = self._post(EMBED_ROUTE, embed_body(self.config.model, [texts[i] for i in batch]))
                answer = parse_embed_answer(call.payload, len(batch))
            except SpcsLlmError as error:
                for position in batch:
                    rows[position] = EmbeddingRow(error=str(error), failure=error)
                continue
            attempts += call.attempts
            for position, vector in zip(batch, answer.vectors):
                rows[position] = EmbeddingRow(vector=vector)
            if answer.total_tokens is not None:
                tokens += answer.total_tokens
            else:
                tokens += sum(self.counter.count(texts[i]) for i in batch)
                estimated = estimated or not self.counter.exact
        return CortexEmbeddingResult(
            rows=[row or EmbeddingRow(error="not embedded") for row in rows], prompt_tokens=tokens,
            tokens_estimated=estimated, cost=self.pricing.estimate(tokens), requests=requests, attempts=attempts,
        )
