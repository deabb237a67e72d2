"""The Cortex REST endpoints on the stand-in's account host, answered by real tiny models.

- ``POST /api/v2/cortex/v1/chat/completions``: OpenAI-compatible chat completions
  (https://docs.snowflake.com/en/user-guide/snowflake-cortex/open_ai_sdk); ``stream: true`` answers server-sent
  ``chat.completion.chunk`` events as the model generates them, ``stream_options.include_usage`` adds a last chunk
  with the usage (OpenAI's form; inferred for Cortex from "superset of the OpenAI API"), then ``data: [DONE]``.
- ``POST /api/v2/cortex/inference:embed``: ``{"model", "text": [...]}`` → ``data[].embedding`` / ``index`` and
  ``usage.total_tokens`` (https://docs.snowflake.cn/en/user-guide/snowflake-cortex/cortex-rest-api/embed-api).

Every answer carries ``x-snowflake-request-id`` (snowflake-ml 2.6.0 ``cortex/_complete.py`` reads it). Checks run
in this order: authentication (401), the CORTEX_USER grant (403), the body and model name (400), the model's rate
limit (429), then the messages and generation fields (400). Inferred: that order, and the error body
``{"message", "request_id"}`` (Cortex's error schema is not published).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from spcs_llm.core.redaction import get_logger
from spcs_standin.cortex_access import Caller, CortexAccess, Refusal
from spcs_standin.cortex_engines import CORTEX_MODELS, DEFAULT_MAX_TOKENS, ChatEngine, CortexModels, GenerationEnd
from spcs_standin.cortex_hermes import StreamingToolParser, parse_output
from spcs_standin.cortex_images import ImageRefusedError, see_images

log = get_logger(__name__)

CHAT_PATH = "/api/v2/cortex/v1/chat/completions"
EMBED_PATH = "/api/v2/cortex/inference:embed"
REQUEST_ID_HEADER = "x-snowflake-request-id"
_DONE = object()


class BadRequestError(Exception):
    """A 400: the message is returned to the caller."""


@dataclass(frozen=True)
class ChatPlan:
    """A validated chat request, ready for the model."""

    model: str
    engine: ChatEngine
    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    with_tools: bool
    stream: bool
    include_usage: bool
    preface: str = ""  # the images' descriptions, which open the reply (the stand-in's deterministic "vision")
    reasoning: str = ""  # a deterministic reasoning text, sent apart from the answer when reasoning was asked for


class CortexApp:
    """Routes of the Cortex endpoints; model work runs in a small thread pool of its own."""

    def __init__(self, access: CortexAccess, models: CortexModels | None = None, workers: int = 2) -> None:
        self.access = access
        self.models = models or CortexModels()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cortex")

    def routes(self) -> list[Route]:
        return [Route(CHAT_PATH, self.chat_completions, methods=["POST"]),
                Route(EMBED_PATH, self.embed, methods=["POST"])]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- shared checks --------------------------------------------------------------------------------------------

    async def _admitted(self, request: Request, request_id: str, kind: str) -> tuple[str, dict[str, Any]] | Response:
        """Auth, grant, body, model and rate limit; the model name and body, or the refusal to send."""
        self.access.stats.requests += 1
        caller = self.access.authenticate(request)
        if isinstance(caller, Refusal):
            log.info("Cortex 401 on %s: %s", request.url.path, caller.message)
            return self._refuse(caller, request_id)
        denied = self.access.authorize(caller)
        if denied is not None:
            return self._refuse(denied, request_id)
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return self._refuse(Refusal(400, "The request body is not valid JSON."), request_id)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            return self._refuse(Refusal(400, "The request body must be a JSON object with a 'model'."), request_id)
        model = body["model"]
        spec = CORTEX_MODELS.get(model)
        if spec is None or spec.kind != kind:
            # Snowflake-Labs/sfquickstarts issue #2030: Cortex answers an unknown model with HTTP 400 and the text
            # `unknown model "<name>"`.
            return self._refuse(Refusal(400, f'unknown model "{model}"'), request_id)
        limited = self.access.admit(model)
        if limited is not None:
            return self._refuse(limited, request_id)
        self.access.stats.by_model[model] += 1
        self._log_caller(caller, model)
        return model, body

    def _refuse(self, refusal: Refusal, request_id: str) -> Response:
        self.access.stats.statuses[refusal.status] += 1
        headers = {REQUEST_ID_HEADER: request_id}
        if refusal.retry_after_s is not None:
            headers["Retry-After"] = str(refusal.retry_after_s)
        return JSONResponse({"message": refusal.message, "request_id": request_id}, refusal.status, headers=headers)

    @staticmethod
    def _log_caller(caller: Caller, model: str) -> None:
        log.info("Cortex request for %s by %s (role %s)", model, caller.user, caller.role)

    # --- embeddings -----------------------------------------------------------------------------------------------

    async def embed(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        admitted = await self._admitted(request, request_id, "embed")
        if isinstance(admitted, Response):
            return admitted
        model, body = admitted
        texts = body.get("text")
        # Embed API spec: `text` is an array of strings with minItems 1.
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return self._refuse(Refusal(400, "'text' must be a non-empty array of strings."), request_id)
        unreadable = _first_unreadable(texts)
        if unreadable is not None:
            # Inferred (stricter reading): a body Snowflake cannot read is the caller's error, a 400 naming the row,
            # never a 500 for the whole request.
            return self._refuse(Refusal(400, f"'text[{unreadable}]' holds invalid Unicode (a lone surrogate)."),
                                request_id)
        loop = asyncio.get_running_loop()
        vectors, tokens = await loop.run_in_executor(self.pool, lambda: self.models.embedder().embed(texts))
        self.access.stats.statuses[200] += 1
        # The spec types `embedding` as a nested array: one vector, wrapped.
        data = [{"object": "embedding", "embedding": [vector], "index": i} for i, vector in enumerate(vectors)]
        return JSONResponse({"object": "list", "data": data, "model": model, "usage": {"total_tokens": tokens}},
                            headers={REQUEST_ID_HEADER: request_id})

    # --- chat completions -----------------------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        admitted = await self._admitted(request, request_id, "chat")
        if isinstance(admitted, Response):
            return admitted
        model, body = admitted
        loop = asyncio.get_running_loop()
        try:
            plan = await loop.run_in_executor(self.pool, self._plan, model, body)
        except BadRequestError as bad:
            return self._refuse(Refusal(400, str(bad)), request_id)
        self.access.stats.statuses[200] += 1
        headers = {REQUEST_ID_HEADER: request_id}
        if plan.stream:
            self.access.stats.streams += 1
            return StreamingResponse(self._stream(plan, request_id), media_type="text/event-stream",
                                     headers={**headers, "Cache-Control": "no-cache"})
        pieces: list[str] = []
        end = await loop.run_in_executor(self.pool, self._generate, plan, pieces.append, threading.Event())
        return JSONResponse(_completion(plan, request_id, "".join(pieces), end), headers=headers)

    def _plan(self, model: str, body: dict[str, Any]) -> ChatPlan:
        """Validate the OpenAI fields used here and render the prompt (runs in the pool: it may load the model)."""
        spec = CORTEX_MODELS[model]
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise BadRequestError("'messages' must be a non-empty array of message objects.")
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if tools and not spec.can_call_tools:
            # Tool calling is offered for Claude and OpenAI models only (https://docs.snowflake.com/en/user-guide/
            # snowflake-cortex/cortex-rest-api, as remembered, not re-read). Inferred: a request with tools for another
            # model is refused rather than answered without them.
            raise BadRequestError(f"Model {model} does not support tool calling.")
        if choice not in (None, "auto", "none") and not tools:  # inferred: OpenAI's rule, refused likewise
            raise BadRequestError("'tool_choice' needs 'tools'.")
        try:
            messages, images = see_images(messages, model, spec.accepts_images)
        except ImageRefusedError as refused:
            raise BadRequestError(str(refused)) from None
        self.access.stats.images += len(images)
        engine = self.models.chat(model)
        try:
            prompt_ids = engine.prompt_ids(_template_messages(messages), None if choice == "none" else tools)
        except Exception as exc:  # noqa: BLE001 (a template error names the offending message)
            raise BadRequestError(f"The messages cannot be rendered for {model}: {exc}") from None
        requested = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
        if not isinstance(requested, int) or requested < 1:  # inferred: the strict reading of a token count
            raise BadRequestError("'max_completion_tokens' must be a positive integer.")
        # Inferred: a prompt longer than the model's context is a 400 (as vLLM answers); the completion is capped to
        # what is left of the context.
        room = engine.context_tokens - len(prompt_ids)
        if room <= 0:
            raise BadRequestError(f"The prompt has {len(prompt_ids)} tokens; {model} takes at most "
                             f"{engine.context_tokens}.")
        stop = body.get("stop") or []
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequestError("'stream' must be true or false.")
        try:
            # Inferred: Cortex COMPLETE's temperature defaults to 0 (greedy), so the tiny models answer the same way.
            temperature, top_p = float(body.get("temperature") or 0.0), float(body.get("top_p") or 1.0)
        except (TypeError, ValueError):
            raise BadRequestError("'temperature' and 'top_p' must be numbers.") from None
        return ChatPlan(model=model, engine=engine, prompt_ids=prompt_ids, max_tokens=min(requested, room),
                        temperature=temperature, top_p=top_p,
                        stop=[stop] if isinstance(stop, str) else [s for s in stop if s],
                        with_tools=bool(tools) and choice != "none", stream=stream,
                        include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
                        preface="".join(image.description() + "\n" for image in images),
                        reasoning=_reasoning(model, body, requested))

    def _generate(self, plan: ChatPlan, emit: Callable[[str], None], cancelled: threading.Event) -> GenerationEnd:
        delay = self.access.token_delay_s

        def paced(piece: str) -> None:
            emit(piece)
            if delay:
                time.sleep(delay)

        if plan.preface:
            emit(plan.preface)
        end = plan.engine.generate(plan.prompt_ids, max_tokens=plan.max_tokens, temperature=plan.temperature,
                                   top_p=plan.top_p, stop_strings=plan.stop, emit=paced, cancelled=cancelled)
        if not plan.preface:
            return end
        preface_tokens = len(plan.engine.tokenizer(plan.preface, add_special_tokens=False)["input_ids"])
        return GenerationEnd(end.completion_tokens + preface_tokens, end.finish_reason)

    async def _stream(self, plan: ChatPlan, request_id: str) -> AsyncIterator[str]:
        """Chunks as the model writes; the generation stops at its next token once the client has gone."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()
        chunk = _ChunkWriter(plan.model, request_id)

        def emit(piece: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, piece)

        generation = loop.run_in_executor(self.pool, self._generate, plan, emit, cancelled)
        generation.add_done_callback(lambda _f: queue.put_nowait(_DONE))
        parser = StreamingToolParser() if plan.with_tools else None
        try:
            yield chunk.event({"role": "assistant", "content": ""})
            if plan.reasoning:
                yield chunk.event({"reasoning_content": plan.reasoning})
            while (piece := await queue.get()) is not _DONE:
                for delta in parser.feed(piece) if parser else [{"content": piece}]:
                    yield chunk.event(delta)
            end = generation.result()
            for delta in parser.feed("", final=True) if parser else []:
                yield chunk.event(delta)
            finish = "tool_calls" if parser is not None and parser.calls else end.finish_reason
            yield chunk.event({}, finish_reason=finish)
            if plan.include_usage:
                yield chunk.usage(_usage(plan, end))
            yield "data: [DONE]\n\n"
        finally:
            if not generation.done():
                cancelled.set()
                self.access.stats.streams_cancelled += 1


class _ChunkWriter:
    """``chat.completion.chunk`` SSE events of one stream (OpenAI's streaming shape)."""

    def __init__(self, model: str, request_id: str) -> None:
        self.base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model}

    def event(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return _sse({**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

    def usage(self, usage: dict[str, int]) -> str:
        return _sse({**self.base, "choices": [], "usage": usage})


def _first_unreadable(texts: list[str]) -> int | None:
    """The index of the first text that is not valid Unicode (JSON lets a lone surrogate through as an escape)."""
    for index, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return index
    return None


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _usage(plan: ChatPlan, end: GenerationEnd) -> dict[str, int]:
    prompt = len(plan.prompt_ids)
    return {"prompt_tokens": prompt, "completion_tokens": end.completion_tokens,
            "total_tokens": prompt + end.completion_tokens}


def _completion(plan: ChatPlan, request_id: str, text: str, end: GenerationEnd) -> dict[str, Any]:
    parsed = parse_output(text) if plan.with_tools else None
    message: dict[str, Any] = {"role": "assistant", "content": parsed.content if parsed else text}
    if plan.reasoning:
        message["reasoning_content"] = plan.reasoning
    finish = end.finish_reason
    if parsed is not None and parsed.tool_calls:
        message["tool_calls"] = parsed.tool_calls
        finish = "tool_calls"
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": int(time.time()),
            "model": plan.model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(plan, end)}


def _reasoning(model: str, body: dict[str, Any], max_tokens: int) -> str:
    """Check the reasoning fields and return the stand-in's deterministic reasoning text ("" when none asked).

    Sources: the inference:complete spec documents Claude's thinking budget and OpenAI's reasoning effort (low,
    medium, high) per family (snowflakedb/snowflake-rest-api-specs, ``cortex-inference.yaml``); Anthropic's
    extended-thinking docs require a budget of at least 1,024 tokens, below max_tokens. Inferred: the chat
    completions field names (``reasoning.max_tokens``, ``reasoning_effort``) and that a field of the wrong family
    is a 400, not ignored.
    """
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if effort is not None:
        if not model.startswith("openai-"):
            raise BadRequestError(f"'reasoning_effort' is not supported for model {model}.")
        if effort not in ("low", "medium", "high"):
            raise BadRequestError("'reasoning_effort' must be low, medium or high.")
        return f"Reasoning with {effort} effort."
    if reasoning is None:
        return ""
    if not model.startswith("claude-"):
        raise BadRequestError(f"'reasoning' is not supported for model {model}.")
    budget = reasoning.get("max_tokens") if isinstance(reasoning, dict) else None
    if not isinstance(budget, int) or budget < 1024 or budget >= max_tokens:
        raise BadRequestError("'reasoning.max_tokens' must be an integer of at least 1024 and below max_tokens.")
    return f"Thinking within a budget of {budget} tokens."


def _template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages as a chat template reads them: list contents joined into text (as vLLM does for text-only
    templates)."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(str(part.get("text", "")) for part in content
                                if isinstance(part, dict) and part.get("type") == "text")
        out.append({**message, "content": content})
    return out
