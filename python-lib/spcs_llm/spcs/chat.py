"""ChatClient: one chat completion = plan the request for the service's protocol, send it, account for it."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace

from spcs_llm.core.errors import ConfigurationError, RequestRejectedError
from spcs_llm.core.redaction import get_logger
from spcs_llm.core.registry import REGISTRY
from spcs_llm.core.transport import CallResult
from spcs_llm.dss.conversation import normalise
from spcs_llm.dss.generation import GenerationParams, token_counts
from spcs_llm.spcs.client import ModelClient
from spcs_llm.spcs.config import ChatModelConfig, adapter_needs_openai_chat
from spcs_llm.spcs.json_output import check_json_reply, wire_response_format
from spcs_llm.spcs.protocol import (
    ChatOutput,
    RowError,
    envelope,
    looks_like_signature_mismatch,
    looks_like_template_refusal,
    openai_chat_row,
    parse_chat_output,
    text_content,
    text_generation_row,
    unwrap,
)
from spcs_llm.spcs.templates import family_for_model, family_spec, render_chat

log = get_logger(__name__)

OPENAI_CHAT = "openai_chat"
TEXT_GENERATION = "text_generation"

# What auto-detection learns per endpoint URL, kept in the process registry (``core/registry.py``).
PROTOCOL = "spcs.chat.protocol"  # the protocol the service took
PARAMLESS = "spcs.chat.paramless"  # a text-generation service whose signature has no generation params
FOLDS_SYSTEM = "spcs.chat.folds_system"  # an OpenAI-chat service whose template refused a system message


def forget_detected_protocols() -> None:
    """Drop what auto-detection learned about endpoints (tests, or after redeploying a service)."""
    REGISTRY.forget(PROTOCOL, PARAMLESS, FOLDS_SYSTEM)


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
    cold_start_wait_seconds: float = 0.0  # the longest wait of a request for the service to resume

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
    max_tokens: int | None = None  # the completion limit the service was sent, if any
    response_format: dict | None = None  # the JSON output the caller asked for, checked on the reply
    system_folded: bool = False  # no system message is left to fold: a template refusal is final
    calls: list[CallResult] = field(default_factory=list)


class ChatClient(ModelClient):
    """Thread-safe; one per configured model. Heavy state (sessions, limiter, ledger, tokens) is process-wide."""

    def __init__(self, config: ChatModelConfig):
        super().__init__(config)
        self.config = config

    def complete(self, messages: Sequence[dict], params: GenerationParams) -> ChatResult:
        plan, call = self._post(messages, params)
        return self._finished(plan, self._decode(plan, call))

    def stream(self, messages: Sequence[dict], params: GenerationParams) -> Generator[str | ChatResult, None, None]:
        """Yield text deltas, then the final ChatResult; closing the generator early closes the HTTP stream.

        Registry services answer one JSON document (snowflake-ml ``_openai_chat_wrapper.py`` ignores ``stream``),
        so usually the whole text arrives as one delta. If an endpoint answers ``text/event-stream`` (an OpenAI-style
        chunk stream, which is inferred for SPCS), the deltas are passed on as they come.
        """
        plan, call = self._post(messages, params, stream=True)
        if call.events is None:
            output = self._decode(plan, call)
            result = self._finished(plan, output)
            yield output.text
            yield result
            return
        pieces: list[str] = []
        finish_reason = None
        usage = None
        # Closed here, not left to garbage collection: on the last event, on an error, and when the consumer closes
        # this generator early (DSS cancelling), the socket and the endpoint's limiter slot are freed at once.
        with call.events as events:
            for event in events:
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
        yield self._finished(plan, parsed)

    def _finished(self, plan: _Plan, output: ChatOutput) -> ChatResult:
        """The result DSS sees; the reply to a JSON request is checked against it (with the finish reason it
        reports) before anything is returned, so tokens are counted once."""
        result = self._result(plan, output)
        if plan.response_format:
            check_json_reply(output.text, plan.response_format, finish_reason=result.finish_reason,
                             engine=self._engine(plan))
        return result

    def _engine(self, plan: _Plan) -> str:
        """Only OpenAI-chat rows can carry response_format; a text-generation service honours none of it."""
        return self.config.engine if plan.protocol == OPENAI_CHAT else "python"

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
                if not self._learn_from_refusal(plan, rejected):
                    raise
                plan = self._plan(messages, params, self._protocol())
                continue
            plan.calls.append(call)
            return plan, call

    def _learn_from_refusal(self, plan: _Plan, rejected: RequestRejectedError) -> bool:
        """Remember what a refusal of ``plan`` says about the endpoint; False if nothing is left to try."""
        if looks_like_template_refusal(rejected.message):
            return self._learn_template_refusal(plan, rejected)
        if not looks_like_signature_mismatch(rejected.message):
            return False
        url = self.config.endpoint.url
        if plan.protocol == OPENAI_CHAT and self.config.protocol == "auto":
            log.info("Endpoint %s refused OpenAI-chat rows; switching to text generation", url)
            self._remember_protocol(TEXT_GENERATION)
            return True
        row = plan.body["data"][0][1]
        if plan.protocol == TEXT_GENERATION and set(row) != {"inputs"}:
            # snowflake-ml changelog 1.38 (_signatures/utils.py): text-generation signatures have generation params
            # only since 1.38; inferred: older services refuse them with a signature-mismatch 400.
            log.info("Endpoint %s refused generation params; sending the prompt alone (the service's own "
                     "generation defaults apply, stop strings are cut client-side)", url)
            REGISTRY.put(url, PARAMLESS, True)
            return True
        return False

    def _learn_template_refusal(self, plan: _Plan, rejected: RequestRejectedError) -> bool:
        """The model's own chat template refused the conversation (its words: roles must alternate / no system
        role): retry once with the system message folded into the first user turn, for this endpoint from now on.
        Refused in that form too, the conversation itself is at fault."""
        url = self.config.endpoint.url
        if plan.protocol != OPENAI_CHAT:
            return False
        if plan.system_folded:
            raise RequestRejectedError(
                "The model's chat template refused the conversation even with the system message folded into the "
                f"first user turn and consecutive same-role turns merged. {rejected.message}",
                fix="Start the conversation with a user message, and alternate user and assistant turns.",
                status=rejected.status,
            ) from None
        log.warning("Endpoint %s: the model's chat template refused the conversation (%s). Retrying with the "
                    "system message folded into the first user turn; later requests to this endpoint are sent "
                    "that way.", url, rejected.message)
        REGISTRY.put(url, FOLDS_SYSTEM, True)
        return True

    def _decode(self, plan: _Plan, call: CallResult) -> ChatOutput:
        (row,) = unwrap(call.payload, 1)
        if isinstance(row, RowError):
            raise RequestRejectedError(f"The model returned no completion: {row.message}")
        return parse_chat_output(row, prompt=plan.prompt, stop=plan.stop)

    def _protocol(self) -> str:
        if self.config.protocol != "auto":
            return self.config.protocol
        return REGISTRY.get(self.config.endpoint.url, PROTOCOL, OPENAI_CHAT)

    def _remember_protocol(self, protocol: str) -> None:
        REGISTRY.put(self.config.endpoint.url, PROTOCOL, protocol)

    def _plan(self, messages: Sequence[dict], params: GenerationParams, protocol: str) -> _Plan:
        if params.max_tokens is None:
            params = replace(params, max_tokens=self.config.default_max_tokens)
        honours_json = protocol == OPENAI_CHAT and self.config.engine == "vllm"
        if params.response_format and not honours_json and self.config.json_fallback == "refuse":
            raise ConfigurationError(
                "JSON output was requested, but this service cannot honour it: only OpenAI-chat services on the "
                "vLLM engine constrain replies to JSON, and this one is set to the Python engine or takes a text "
                "prompt.",
                fix="Serve the model with the vLLM engine and set 'Inference engine' to vllm, or set 'JSON output "
                "the service cannot honour' to check, to accept replies that parse as JSON.",
            )
        if protocol == OPENAI_CHAT:
            return self._openai_chat_plan(messages, params, honours_json)
        if self.config.adapter:
            raise adapter_needs_openai_chat()
        rendered = render_chat(self._family(), messages)
        stop = tuple(dict.fromkeys((*params.stop, *rendered.stop)))
        paramless = bool(REGISTRY.get(self.config.endpoint.url, PARAMLESS, False))
        row = (
            {"inputs": rendered.request_text}
            if paramless
            else text_generation_row(rendered.request_text, replace(params, stop=stop))
        )
        return _Plan(TEXT_GENERATION, envelope([row]), rendered.request_text, stop, rendered.model_input,
                     max_tokens=None if paramless else params.max_tokens, response_format=params.response_format)

    def _openai_chat_plan(self, messages: Sequence[dict], params: GenerationParams, honours_json: bool) -> _Plan:
        """OpenAI-chat rows: the conversation in the form the model's template accepts, and only the controls the
        service's engine applies."""
        fold = self._folds_system()
        plain = [{"role": m.get("role"), "content": text_content(m.get("content"), i)} for i, m in enumerate(messages)]
        conversation = normalise(plain, fold_system=fold)
        sent = replace(params, response_format=wire_response_format(params.response_format) if honours_json else None)
        if self.config.engine == "python" and params.presence_penalty is not None:
            # snowml's _openai_chat_wrapper.py logs and drops presence_penalty on the Python engine.
            log.warning("presence_penalty is ignored by Python-engine services; not sending it to %s",
                        self.config.endpoint.url)
            sent = replace(sent, presence_penalty=None)
        text = "\n".join(m["content"] for m in conversation)
        row = openai_chat_row(conversation, sent, model=self.config.adapter)
        return _Plan(OPENAI_CHAT, envelope([row]), prompt_text_for_count=text,
                     max_tokens=params.max_tokens, response_format=params.response_format,
                     system_folded=fold or all(m["role"] != "system" for m in conversation))

    def _folds_system(self) -> bool:
        """Whether the system message goes into the first user turn: the family's template has no system role,
        or this endpoint's template already refused one."""
        family = self.config.family if self.config.family != "auto" else family_for_model(self.config.endpoint.url)
        if family_spec(family).system == "fold":
            return True
        return bool(REGISTRY.get(self.config.endpoint.url, FOLDS_SYSTEM, False))

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

    def _token_counts(self, plan: _Plan, output: ChatOutput) -> tuple[int, int, bool]:
        """Prompt and completion tokens, and whether they are estimates: the service's usage, else our counter."""
        return token_counts(output.usage, self.counter, plan.prompt_text_for_count, output.text)

    def _finish_reason(self, plan: _Plan, output: ChatOutput, completion_tokens: int, estimated: bool) -> str | None:
        """The finish reason DSS should see.

        snowml's Python engine always says "stop" (``_openai_chat_wrapper.py``), and legacy text-generation
        services say nothing. Rule: unless the service is a vLLM-engine OpenAI-chat service (its reasons are real)
        or the text was cut at a stop string by us, a completion whose EXACT token count (the service's usage, or
        the configured tokenizer) reached the max tokens the request sent is reported as "length". The wrapper
        counts every generated token, the EOS included, so a reply whose EOS was the very last allowed token is
        also reported as "length". Estimated counts never claim it.
        """
        reached_limit = not estimated and plan.max_tokens is not None and completion_tokens >= plan.max_tokens
        trust_service = plan.protocol == OPENAI_CHAT and self.config.engine == "vllm"
        cut_by_us = output.finish_reason == "stop" and plan.protocol == TEXT_GENERATION
        if reached_limit and not trust_service and not cut_by_us:
            return "length"
        return output.finish_reason

    def _result(self, plan: _Plan, output: ChatOutput) -> ChatResult:
        prompt_tokens, completion_tokens, estimated = self._token_counts(plan, output)
        busy = sum(c.busy_seconds for c in plan.calls)
        return ChatResult(
            text=output.text,
            finish_reason=self._finish_reason(plan, output, completion_tokens, estimated),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tokens_estimated=estimated,
            estimated_cost=self.rate.dollars(busy),
            protocol=plan.protocol,
            busy_seconds=busy,
            attempts=sum(c.attempts for c in plan.calls),
            renewals=sum(c.renewals for c in plan.calls),
            retry_reasons=tuple(r for c in plan.calls for r in c.retry_reasons),
            cold_start_wait_seconds=max((c.cold_start_wait_seconds for c in plan.calls), default=0.0),
        )
