"""The model-server half of each service: parse rows, run the real model, build the ``{"data": ...}`` answer.

Runs in the service's worker threads (never on the event loop). Responses follow spcs-protocol.md §C.2
"Response": ``{"data": [[row_id, {"<out col>": value}], ...]}``; failures are §C.1 400s.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..redaction import get_logger
from .envelopes import MALFORMED, EnvelopeError, MethodSignature, Row, parse_rows
from .packaging import PackagedModel, load_chat_pipeline_model, load_embedder
from .settings import ServiceSpec
from .tinychat import chat_model_dir

log = get_logger(__name__)

# The custom /predict embedder (spcs-protocol.md §D custom-model sketch, §C.1 external-function rows): a
# hand-declared signature ``inputs`` STRING → ``outputs`` STRING holding the vector as JSON text. It reuses the
# packaged MiniLM rather than packaging a CustomModel of its own: that would copy the same 88 MB of weights again
# and add a pandas round trip per request, with no change to what goes over the wire.
CUSTOM_PREDICT_SIGNATURE = MethodSignature(inputs=("inputs",), params=())
# The ≤1.7 text-generation signature had no generation params (spcs-protocol.md §C.3 first row).
LEGACY_TEXTGEN_SIGNATURE = MethodSignature(inputs=("inputs",), params=())
# Params the OpenAI wrapper does not read (it ignores response_format; "model" is an adapter alias, §C.4).
_CHAT_PARAMS_NOT_FORWARDED = {"response_format", "model"}
# Completion-length params (OpenAI chat: max_completion_tokens / max_tokens; text generation: max_new_tokens).
_COMPLETION_LENGTH_PARAMS = ("max_completion_tokens", "max_tokens", "max_new_tokens")


@dataclass(frozen=True)
class InferenceResult:
    status: int
    body: bytes
    rows: int = 0


@dataclass(frozen=True)
class ContextWindow:
    """Holds requests to the chat model's context: prompt plus requested completion must fit, checked up front.

    The refusal uses vLLM's wording (the engine SPCS serves large chat models with, §C.4) [inf: that the managed
    server passes it on as a 400]. Without it a 1 MB prompt would hold a worker for minutes.
    """

    tokenizer: Any
    tokens: int

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        """The prompt the model will see: like snowml's OpenAI-chat wrapper, each text part of a list content
        becomes a message of its own, and other parts are dropped."""
        texts = []
        for message in messages:
            if isinstance(message["content"], str):
                texts.append({"role": message["role"], "content": message["content"]})
                continue
            texts.extend({"role": message["role"], "content": part.get("text", "")} for part in message["content"]
                         if isinstance(part, dict) and part.get("type") == "text")
        return self.tokenizer.apply_chat_template(texts, tokenize=False, add_generation_prompt=True)

    def check(self, prompt: str, params: dict[str, Any]) -> None:
        prompt_tokens = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        completion = next((int(params[name]) for name in _COMPLETION_LENGTH_PARAMS if params.get(name)), 0)
        if prompt_tokens + completion > self.tokens:
            raise EnvelopeError(
                f"This model's maximum context length is {self.tokens} tokens. However, you requested "
                f"{prompt_tokens + completion} tokens ({prompt_tokens} in the messages, {completion} in the "
                "completion). Please reduce the length of the messages or completion."
            )


class ModelRuntime:
    """Loads models once, lazily (so an auth-only test never imports torch), and answers requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, PackagedModel] = {}
        self._context: ContextWindow | None = None
        self._loaders: dict[str, Callable[[], PackagedModel]] = {
            "chat": lambda: load_chat_pipeline_model(with_template=True),
            "textgen": lambda: load_chat_pipeline_model(with_template=False),
            "embed": load_embedder,
        }

    def context_window(self) -> ContextWindow:
        """The tiny chat model's tokenizer and context length, loaded once."""
        with self._lock:
            if self._context is None:
                from transformers import AutoConfig, AutoTokenizer

                folder = chat_model_dir()
                self._context = ContextWindow(AutoTokenizer.from_pretrained(folder),
                                              AutoConfig.from_pretrained(folder).max_position_embeddings)
            return self._context

    def model(self, key: str) -> PackagedModel:
        with self._lock:
            if key not in self._models:
                log.info("Loading model %s", key)
                self._models[key] = self._loaders[key]()
            return self._models[key]

    def preload(self, model_names: tuple[str, ...]) -> None:
        for name in model_names:
            for key in (("chat", "textgen") if name == "chat" else ("embed",)):
                self.model(key)

    def routes(self, spec: ServiceSpec) -> dict[str, str]:
        """URL path → model method. spcs-protocol.md §0.3: ``/<method with _ → ->``; ``__call__`` also as-is."""
        if spec.kind == "openai_chat":
            return {"/__call__": "__call__", "/--call--": "__call__"}
        if spec.kind == "text_generation":
            # §C.1: the legacy deploy path served a single /predict; §C.2: current services expose __call__.
            return {"/predict": "__call__", "/__call__": "__call__", "/--call--": "__call__"}
        if spec.kind == "encode":
            return {"/encode": "encode", "/encode-query": "encode_query", "/encode-document": "encode_document"}
        return {"/predict": "predict"}

    def handle(self, spec: ServiceSpec, method: str, body: bytes) -> InferenceResult:
        try:
            if spec.kind == "openai_chat":
                return self._chat(method, body)
            if spec.kind == "text_generation":
                return self._text_generation(body, legacy=spec.legacy_json_output)
            if spec.kind == "encode":
                return self._encode(method, body)
            return self._custom_predict(body)
        except EnvelopeError as exc:
            return _error(400, str(exc))
        except Exception as exc:  # the server's own words for any model failure (§C.1)
            log.exception("Prediction failed on %s", spec.name)
            return _error(400, f"Prediction failed: {type(exc).__name__}: {exc}")

    def _chat(self, method: str, body: bytes) -> InferenceResult:
        import pandas as pd

        packaged = self.model("chat")
        signature = packaged.signatures[method]
        rows = parse_rows(body, signature)
        window = self.context_window()
        for row in rows:
            _check_messages(row.inputs["messages"])
            window.check(window.chat_prompt(row.inputs["messages"]), row.params)
        defaults = {p.name: p.default for p in signature.params if p.name not in _CHAT_PARAMS_NOT_FORWARDED}
        answers_by_row: dict[int, Any] = {}
        for params_key, group in _group_by_params(rows).items():
            params = {**defaults, **{k: v for k, v in json.loads(params_key).items() if k in defaults}}
            frame = pd.DataFrame({"messages": [row.inputs["messages"] for row in group]})
            answers = getattr(packaged.model, method)(frame, **params).to_dict("records")
            answers_by_row.update(zip((id(row) for row in group), answers))
        return _data([(row.row_id, answers_by_row[id(row)]) for row in rows], len(rows))

    def _text_generation(self, body: bytes, *, legacy: bool) -> InferenceResult:
        import pandas as pd

        packaged = self.model("textgen")
        signature = LEGACY_TEXTGEN_SIGNATURE if legacy else packaged.signatures["__call__"]
        rows = parse_rows(body, signature)
        window = self.context_window()
        for row in rows:
            if not isinstance(row.inputs["inputs"], str):
                raise EnvelopeError(f"{MALFORMED}: 'inputs' must be a string.")
            window.check(row.inputs["inputs"], row.params)
        answers_by_row: dict[int, Any] = {}
        for params_key, group in _group_by_params(rows).items():
            # Only the params the caller sent are forwarded: the packaged defaults include nested configs that
            # the pipeline would reject when passed explicitly [inf: how the managed server fills defaults].
            params = json.loads(params_key)
            frame = pd.DataFrame({"inputs": [row.inputs["inputs"] for row in group]})
            answers = packaged.model.__call__(frame, **params).to_dict("records")
            for row, answer in zip(group, answers):
                generated = [{"generated_text": item["generated_text"]} for item in answer["outputs"]]
                # §C.3: ≤1.7 sent `outputs` as JSON text; 1.8+ as a real list of {generated_text}.
                answers_by_row[id(row)] = {"outputs": json.dumps(generated) if legacy else generated}
        return _data([(row.row_id, answers_by_row[id(row)]) for row in rows], len(rows))

    def _encode(self, method: str, body: bytes) -> InferenceResult:
        packaged = self.model("embed")
        signature = packaged.signatures[method]
        rows = parse_rows(body, signature)
        column = signature.inputs[0]
        texts = [row.inputs[column] for row in rows]
        params = rows[0].params if rows else {}
        if any(row.params != params for row in rows):
            raise EnvelopeError(f"{MALFORMED}: every row must use the same params.")
        vectors = self._embed(texts, method, params)
        return _data([(row.row_id, {"output": vec}) for row, vec in zip(rows, vectors)], len(rows))

    def _custom_predict(self, body: bytes) -> InferenceResult:
        rows = parse_rows(body, CUSTOM_PREDICT_SIGNATURE)
        vectors = self._embed([row.inputs["inputs"] for row in rows], "encode", {})
        return _data([(row.row_id, {"outputs": json.dumps(vec)}) for row, vec in zip(rows, vectors)], len(rows))

    def _embed(self, texts: list[Any], method: str, params: dict[str, Any]) -> list[list[float] | None]:
        """One model call for the whole request; null sentences give null outputs, as snowml's handler does."""
        if any(text is not None and not isinstance(text, str) for text in texts):
            raise EnvelopeError(f"{MALFORMED}: every sentence must be a string or null.")
        present = [i for i, text in enumerate(texts) if text is not None]
        out: list[list[float] | None] = [None] * len(texts)
        if present:
            model = self.model("embed").model
            kwargs = {k: v for k, v in params.items() if v is not None}
            matrix = getattr(model, method)([texts[i] for i in present], convert_to_numpy=True, **kwargs)
            for i, vector in zip(present, matrix.tolist()):
                out[i] = vector
        return out


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), (str, list))
        for m in messages
    ):
        raise EnvelopeError(f"{MALFORMED}: 'messages' must be a non-empty list of {{role, content}} objects.")


def _group_by_params(rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(json.dumps(row.params, sort_keys=True), []).append(row)
    return groups


def _data(pairs: list[tuple[Any, Any]], rows: int) -> InferenceResult:
    return InferenceResult(200, json.dumps({"data": [[row_id, value] for row_id, value in pairs]}).encode(), rows)


def _error(status: int, message: str) -> InferenceResult:
    return InferenceResult(status, json.dumps({"error": message}).encode())
