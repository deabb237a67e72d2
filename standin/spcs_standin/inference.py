"""The model-server half of each service: parse rows, run the real model, build the ``{"data": ...}`` answer.

Runs in the service's worker threads (never on the event loop). Responses follow Snowflake's
registry REST tests: ``{"data": [[row_id, {"<out col>": value}], ...]}``; failures are 400s as in the legacy
server (snowflake-ml 1.6.2 ``_deploy_client/image_builds/inference_server/main.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.redaction import get_logger
from spcs_standin.envelopes import MALFORMED, EnvelopeError, MethodSignature, parse_request
from spcs_standin.packaging import OWN_TEMPLATE, ChatTemplate, PackagedModel, load_chat_pipeline_model, load_embedder
from spcs_standin.settings import ServiceSpec
from spcs_standin.tinychat import chat_model_dir

log = get_logger(__name__)

# The custom /predict embedder (a snowflake-ml custom_model method fed external-function rows, as the
# 1.6.2 inference_server/main.py read them): a
# hand-declared signature ``inputs`` STRING → ``outputs`` STRING holding the vector as JSON text. It reuses the
# packaged MiniLM rather than packaging a CustomModel of its own: that would copy the same 88 MB of weights again
# and add a pandas round trip per request, with no change to what goes over the wire.
CUSTOM_PREDICT_SIGNATURE = MethodSignature(inputs=("inputs",))
# The ≤1.7 text-generation signature had no generation params (snowflake-ml ≤1.7 _signatures/utils.py).
LEGACY_TEXTGEN_SIGNATURE = MethodSignature(inputs=("inputs",))
# Completion-length params (OpenAI chat: max_completion_tokens; text generation: max_new_tokens).
_COMPLETION_LENGTH_PARAMS = ("max_completion_tokens", "max_new_tokens")
# sentence_transformers.py (snowml 2.6) refuses a batch_size that is not a positive integer with these words.
_POSITIVE_ENCODE_PARAMS = ("batch_size", "truncate_dim")
# The base tiny chat model plus its LoRA adapter, routed by the `model` param (local/lora_engine.py).
LORA_MODEL_KEY = "chat-lora"


@dataclass(frozen=True)
class InferenceResult:
    status: int
    body: bytes
    rows: int = 0


@dataclass(frozen=True)
class ContextWindow:
    """Holds requests to the chat model's context: prompt plus requested completion must fit, checked up front.

    The refusal uses vLLM's wording (the engine SPCS serves large chat models with; snowflake-ml
    ``inference_engine.py``). Inferred: that the managed server passes it on as a 400. Without it a 1 MB prompt
    would hold a worker for minutes.
    """

    tokenizer: Any
    tokens: int

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        """The prompt the model will see: like snowml's OpenAI-chat wrapper, each text part of a list content
        becomes a message of its own, and other parts are dropped. A strict template raises here exactly as it
        would inside the wrapper (transformers' ``TemplateError``)."""
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


def model_key(spec: ServiceSpec) -> str:
    """Which loaded model serves ``spec``: services sharing a package and an engine share one model."""
    if spec.lora:
        return LORA_MODEL_KEY
    if spec.kind == "openai_chat":
        return f"chat:{spec.template_family or OWN_TEMPLATE}:{spec.engine}"
    return "textgen" if spec.kind == "text_generation" else "embed"


class ModelRuntime:
    """Loads models once, lazily (so an auth-only test never imports torch), and answers requests."""

    def __init__(self, extra_adapters: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._extra_adapters = dict(extra_adapters or {})
        self._models: dict[str, PackagedModel] = {}
        self._windows: dict[str, ContextWindow] = {}

    def context_window(self, family: str | None) -> ContextWindow:
        """The tiny chat model's tokenizer (with ``family``'s template, if any) and context length, loaded once."""
        key = family or OWN_TEMPLATE
        with self._lock:
            if key not in self._windows:
                from transformers import AutoConfig, AutoTokenizer

                folder = chat_model_dir()
                tokenizer = AutoTokenizer.from_pretrained(folder)
                if key != OWN_TEMPLATE:
                    tokenizer.chat_template = ChatTemplate(key).source
                context = AutoConfig.from_pretrained(folder).max_position_embeddings
                self._windows[key] = ContextWindow(tokenizer, context)
            return self._windows[key]

    def model(self, key: str) -> PackagedModel:
        with self._lock:
            if key not in self._models:
                log.info("Loading model %s", key)
                self._models[key] = _loader(key, self._extra_adapters)()
            return self._models[key]

    def preload(self, model_names: tuple[str, ...]) -> None:
        for name in model_names:
            for key in ((f"chat:{OWN_TEMPLATE}:python", "textgen") if name == "chat" else ("embed",)):
                self.model(key)

    def routes(self, spec: ServiceSpec) -> dict[str, str]:
        """URL path → model method, as Snowflake's REST tests call it: ``/<method with _ → ->``; ``__call__`` as-is."""
        if spec.kind == "openai_chat":
            return {"/__call__": "__call__", "/--call--": "__call__"}
        if spec.kind == "text_generation":
            # The legacy deploy path served a single /predict (1.6.2 inference_server/main.py); current services
            # expose __call__ (registry_transformer_params_test.py).
            return {"/predict": "__call__", "/__call__": "__call__", "/--call--": "__call__"}
        if spec.kind == "encode":
            return {"/encode": "encode", "/encode-query": "encode_query", "/encode-document": "encode_document"}
        return {"/predict": "predict"}

    def handle(self, spec: ServiceSpec, method: str, body: bytes) -> InferenceResult:
        try:
            if spec.kind == "openai_chat":
                return self._chat(spec, method, body)
            if spec.kind == "text_generation":
                return self._text_generation(body, legacy=spec.legacy_json_output)
            if spec.kind == "encode":
                return self._encode(method, body)
            return self._custom_predict(body)
        except EnvelopeError as exc:
            return _error(400, str(exc))
        except Exception as exc:  # noqa: BLE001 - as the model server does, any model failure is the request's 400
            # Any model failure, a chat template's TemplateError included: 400 {"error": "Prediction failed: ..."}.
            # Inferred: that is the ≤1.6 inference server's answer (1.6.2 main.py); the current server's is
            # undocumented, and
            # a 400 holding the exception text is the stricter reading (a client must surface it, not retry it).
            log.warning("Prediction failed on %s: %s: %s", spec.name, type(exc).__name__, exc)
            return _error(400, f"Prediction failed: {type(exc).__name__}: {exc}")

    def _chat(self, spec: ServiceSpec, method: str, body: bytes) -> InferenceResult:
        import pandas as pd

        packaged = self.model(model_key(spec))
        request = parse_request(body, packaged.signatures[method])
        window = self.context_window(spec.template_family)
        for row in request.rows:  # renders each prompt: a strict template raises here as it would in the wrapper
            _check_messages(row.inputs["messages"])
            window.check(window.chat_prompt(row.inputs["messages"]), request.params)
        conversations = [row.inputs["messages"] for row in request.rows]
        if spec.engine == "vllm":
            answers = [packaged.model.complete(messages, request.params) for messages in conversations]
        elif conversations:
            # Every resolved param goes to snowml's own handler, as the server passes them; its wrapper picks what
            # it supports (_resolve_chat_params) and silently drops response_format and model.
            answers = getattr(packaged.model, method)(pd.DataFrame({"messages": conversations}),
                                                      **request.params).to_dict("records")
        else:
            answers = []
        return _data([(row.row_id, answer) for row, answer in zip(request.rows, answers)], len(request.rows))

    def _text_generation(self, body: bytes, *, legacy: bool) -> InferenceResult:
        import pandas as pd

        packaged = self.model("textgen")
        request = parse_request(body, LEGACY_TEXTGEN_SIGNATURE if legacy else packaged.signatures["__call__"])
        window = self.context_window(None)
        for row in request.rows:
            if not isinstance(row.inputs["inputs"], str):
                raise EnvelopeError(f"{MALFORMED}: 'inputs' must be a string.")
            window.check(row.inputs["inputs"], request.params)
        if not request.rows:
            return _data([], 0)
        # snowml's text-generation handler drops the params that resolved to None (_filter_none_kwargs).
        frame = pd.DataFrame({"inputs": [row.inputs["inputs"] for row in request.rows]})
        answers = packaged.model.__call__(frame, **request.params).to_dict("records")
        pairs = []
        for row, answer in zip(request.rows, answers):
            generated = [{"generated_text": item["generated_text"]} for item in answer["outputs"]]
            # snowflake-ml _signatures/utils.py: ≤1.7 sent `outputs` as JSON text; 1.8+ as a real list of
            # {generated_text}.
            pairs.append((row.row_id, {"outputs": json.dumps(generated) if legacy else generated}))
        return _data(pairs, len(request.rows))

    def _encode(self, method: str, body: bytes) -> InferenceResult:
        packaged = self.model("embed")
        signature = packaged.signatures[method]
        request = parse_request(body, signature)
        texts = [row.inputs[signature.inputs[0]] for row in request.rows]
        vectors = self._embed(texts, method, request.params)
        return _data([(row.row_id, {"output": vec}) for row, vec in zip(request.rows, vectors)], len(request.rows))

    def _custom_predict(self, body: bytes) -> InferenceResult:
        request = parse_request(body, CUSTOM_PREDICT_SIGNATURE)
        vectors = self._embed([row.inputs["inputs"] for row in request.rows], "encode", {})
        return _data([(row.row_id, {"outputs": json.dumps(vec)}) for row, vec in zip(request.rows, vectors)],
                     len(request.rows))

    def _embed(self, texts: list[Any], method: str, params: dict[str, Any]) -> list[list[float] | None]:
        """One model call for the whole request; null sentences give null outputs, as snowml's handler does.

        ``batch_size`` and ``truncate_dim`` are passed to ``encode`` when set, as the 2.6 handler's ``fn`` does
        (sentence_transformers.py ``_create_custom_model``).
        """
        if any(text is not None and not isinstance(text, str) for text in texts):
            raise EnvelopeError(f"{MALFORMED}: every sentence must be a string or null.")
        kwargs = {name: value for name, value in params.items() if value is not None}
        for name in _POSITIVE_ENCODE_PARAMS:
            if name in kwargs and kwargs[name] < 1:
                raise EnvelopeError(f"{MALFORMED}: {name} must be a positive integer")
        present = [i for i, text in enumerate(texts) if text is not None]
        out: list[list[float] | None] = [None] * len(texts)
        if present:
            model = self.model("embed").model
            matrix = getattr(model, method)([texts[i] for i in present], convert_to_numpy=True, **kwargs)
            for i, vector in zip(present, matrix.tolist()):
                out[i] = vector
        return out


def _loader(key: str, extra_adapters: Mapping[str, str]) -> Callable[[], PackagedModel]:
    if key == "embed":
        return load_embedder
    if key == "textgen":
        return lambda: load_chat_pipeline_model(ChatTemplate(None))
    if key == LORA_MODEL_KEY:
        from spcs_standin.lora_engine import load_lora_chat

        return lambda: load_lora_chat(extra_adapters)
    _, family, engine = key.split(":")
    if engine == "vllm":
        from spcs_standin.vllm_engine import load_vllm_chat

        return lambda: load_vllm_chat(ChatTemplate(family))
    return lambda: load_chat_pipeline_model(ChatTemplate(family))


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), (str, list))
        for m in messages
    ):
        raise EnvelopeError(f"{MALFORMED}: 'messages' must be a non-empty list of {{role, content}} objects.")


def _data(pairs: list[tuple[Any, Any]], rows: int) -> InferenceResult:
    return InferenceResult(200, json.dumps({"data": [[row_id, value] for row_id, value in pairs]}).encode(), rows)


def _error(status: int, message: str) -> InferenceResult:
    return InferenceResult(status, json.dumps({"error": message}).encode())
