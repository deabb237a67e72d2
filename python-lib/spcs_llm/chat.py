"""ChatClient: one chat completion = plan the request for the service's protocol, send it, account for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from .client import ModelClient
from .config import ChatModelConfig
from .errors import ConfigurationError, RequestRejectedError
from .protocol import (
    ChatOutput,
    GenerationParams,
    RowError,
    envelope,
    looks_like_signature_mismatch,
    openai_chat_row,
    parse_chat_output,
    text_generation_row,
    unwrap,
)
from .redaction import get_logger
from .templates import family_for_model, render_chat
from .transport import CallResult

log = get_logger(__name__)

OPENAI_CHAT = "openai_chat"
TEXT_GENERATION = "text_generation"

_detected_protocols: dict[str, str] = {}
_paramless_endpoints: set[str] = set()  # text-generation services whose signature has no generation params
_detected_lock = threading.Lock()


def forget_detected_protocols() -> None:
    """Drop what auto-detection learned about endpoints (tests, or after redeploying a service)."""
    with _detected_lock:
        _detected_protocols.clear()
        _paramless_endpoints.clear()


@dataclass(frozen=True)
class ChatResult:
    """A finished completion with everything DSS needs for usage, cost and tracing."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool
    estimated_cost: float
    protocol: str
    busy_seconds: float
    attempts: int
    renewals: int
    retry_reasons: tuple[str, ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class _Plan:
    """What one request sends, and what the reply must be read against."""

    protocol: str
    body: dict
    prompt: str | None = None
    stop: tuple[str, ...] = ()
    prompt_text_for_count: str = ""
    calls: list[CallResult] = field(default_factory=list)


class ChatClient(ModelClient):
    """Thread-safe; one per configured model. Heavy state (sessions, limiter, ledger, tokens) is process-wide."""

    def __init__(self, config: ChatModelConfig):
        super().__init__(config)
        self.config = config

    def complete(self, messages: Sequence[dict], params: GenerationParams) -> ChatResult:
        plan, output = self._send(messages, params)
        return self._result(plan, output)

    def stream(self, messages: Sequence[dict], params: GenerationParams) -> Iterator[str | ChatResult]:
        """Yield text deltas, then the final ChatResult.

        Registry services answer one JSON document (spcs-protocol.md §C.3: ``stream`` is ignored), so usually the
        whole text arrives as one delta. If an endpoint answers ``text/event-stream`` (an OpenAI-style chunk stream,
        which is [inf] for SPCS), the deltas are passed on as they come.
        """
        plan, call = self._post(messages, params, stream=True)
        if call.events is None:
            output = self._decode(plan, call)
            yield output.text
            yield self._result(plan, output)
            return
        pieces: list[str] = []
        finish_reason = None
        usage = None
        for event in call.events:
            for choice in event.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content") or ""
                if delta:
                    pieces.append(delta)
                    yield delta
                finish_reason = choice.get("finish_reason") or finish_reason
            usage = event.get("usage") or usage
        parsed = parse_chat_output(
            {"choices": [{"message": {"content": "".join(pieces)}, "finish_reason": finish_reason}], "usage": usage}
        )
        yield self._result(plan, parsed)

    def _send(self, messages: Sequence[dict], params: GenerationParams) -> tuple[_Plan, ChatOutput]:
        plan, call = self._post(messages, params)
        return plan, self._decode(plan, call)

    def _post(
        self, messages: Sequence[dict], params: GenerationParams, *, stream: bool = False
    ) -> tuple[_Plan, CallResult]:
        """Send the planned rows; when the service refuses their shape, fall back to the next shape it may take:
        OpenAI-chat rows → text-generation rows (auto protocol only) → bare text-generation rows (no params)."""
        plan = self._plan(messages, params, self._protocol())
        while True:
            try:
                call = self.transport.post_json(self.config.endpoint.route, plan.body, stream=stream)
            except RequestRejectedError as rejected:
                if not looks_like_signature_mismatch(rejected.message) or not self._learn_from_refusal(plan):
                    raise
                plan = self._plan(messages, params, self._protocol())
                continue
            plan.calls.append(call)
            return plan, call

    def _learn_from_refusal(self, plan: _Plan) -> bool:
        """Remember what a signature-mismatch refusal of ``plan`` says about the endpoint; False if nothing is left
        to try."""
        url = self.config.endpoint.url
        if plan.protocol == OPENAI_CHAT and self.config.protocol == "auto":
            log.info("Endpoint %s refused OpenAI-chat rows; switching to text generation", url)
            self._remember_protocol(TEXT_GENERATION)
            return True
        row = plan.body["data"][0][1]
        if plan.protocol == TEXT_GENERATION and set(row) != {"inputs"}:
            # spcs-protocol.md §C.3: text-generation signatures have generation params only since snowflake-ml
            # 1.38; that older services refuse them with a signature-mismatch 400 is [inf].
            log.info("Endpoint %s refused generation params; sending the prompt alone (the service's own "
                     "generation defaults apply, stop strings are cut client-side)", url)
            with _detected_lock:
                _paramless_endpoints.add(url)
            return True
        return False

    def _decode(self, plan: _Plan, call: CallResult) -> ChatOutput:
        (row,) = unwrap(call.payload, 1)
        if isinstance(row, RowError):
            raise RequestRejectedError(f"The model returned no completion: {row.message}")
        return parse_chat_output(row, prompt=plan.prompt, stop=plan.stop)

    def _protocol(self) -> str:
        if self.config.protocol != "auto":
            return self.config.protocol
        with _detected_lock:
            return _detected_protocols.get(self.config.endpoint.url, OPENAI_CHAT)

    def _remember_protocol(self, protocol: str) -> None:
        with _detected_lock:
            _detected_protocols[self.config.endpoint.url] = protocol

    def _plan(self, messages: Sequence[dict], params: GenerationParams, protocol: str) -> _Plan:
        if params.max_tokens is None:
            params = replace(params, max_tokens=self.config.default_max_tokens)
        if protocol == OPENAI_CHAT:
            row = openai_chat_row(messages, params)
            text = "\n".join(str(m.get("content") or "") for m in messages)
            return _Plan(OPENAI_CHAT, envelope([row]), prompt_text_for_count=text)
        rendered = render_chat(self._family(), messages)
        stop = tuple(dict.fromkeys((*params.stop, *rendered.stop)))
        with _detected_lock:
            paramless = self.config.endpoint.url in _paramless_endpoints
        row = (
            {"inputs": rendered.request_text}
            if paramless
            else text_generation_row(rendered.request_text, replace(params, stop=stop))
        )
        return _Plan(TEXT_GENERATION, envelope([row]), rendered.request_text, stop, rendered.model_input)

    def _family(self) -> str:
        if self.config.family != "auto":
            return self.config.family
        guessed = family_for_model(self.config.endpoint.url)
        if guessed == "raw":
            raise ConfigurationError(
                "This service takes a text prompt (legacy text generation), so the plugin must format the chat "
                "itself, and the model family cannot be guessed from the endpoint.",
                fix="Set 'Model family' on the model (llama2, zephyr, mistral, phi2, falcon, chatml or raw).",
            )
        return guessed

    def _result(self, plan: _Plan, output: ChatOutput) -> ChatResult:
        if output.usage is not None:
            prompt_tokens, completion_tokens, estimated = output.usage.prompt_tokens, output.usage.completion_tokens, False
        else:
            prompt_tokens = self.counter.count(plan.prompt_text_for_count)
            completion_tokens = self.counter.count(output.text)
            estimated = not self.counter.exact
        busy = sum(c.busy_seconds for c in plan.calls)
        return ChatResult(
            text=output.text,
            finish_reason=output.finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tokens_estimated=estimated,
            estimated_cost=self.rate.dollars(busy),
            protocol=plan.protocol,
            busy_seconds=busy,
            attempts=sum(c.attempts for c in plan.calls),
            renewals=sum(c.renewals for c in plan.calls),
            retry_reasons=tuple(r for c in plan.calls for r in c.retry_reasons),
        )
