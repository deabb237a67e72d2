"""The stand-in's "vllm" engine mode: the same packaged chat model, served the way a vLLM-engine service answers.

A service created with ``inference_engine_options={"engine": "vllm"}`` (snowml ``inference_engine.py``) serves
the logged Hugging Face weights and tokenizer through vLLM, behind the same REST envelopes and OpenAI-shaped
rows (``registry_transformer_params_test.py`` runs the same REST assertions on both
engines). Unlike snowml's Python wrapper (``_openai_chat_wrapper.py``), vLLM:

- honours ``response_format`` ``{"type": "json_schema", "json_schema": {"schema": ...}}`` with guided decoding
  (the shape of ``_RESPONSE_FORMAT_PARAM_SPEC`` in ``openai_signatures.py``);
- reports real finish reasons: "length" when the completion reached ``max_completion_tokens``, else "stop";
- applies ``presence_penalty`` and ``frequency_penalty`` as OpenAI defines them.

Inferred: what a vLLM service does with a ``response_format`` type other than json_schema/text is unknown; the
stand-in refuses it (400) rather than guess.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from spcs_standin.envelopes import MALFORMED, EnvelopeError
from spcs_standin.guided_json import GuidedJsonWriter, SchemaError, TokenTable
from spcs_standin.packaging import ChatTemplate, PackagedModel, load_chat_pipeline_model


def load_vllm_chat(template: ChatTemplate) -> PackagedModel:
    """The packaged tiny chat pipeline loaded raw, wrapped as a vLLM-style engine; the signature is the package's."""
    packaged = load_chat_pipeline_model(template, as_custom_model=False)
    return PackagedModel(VllmChatEngine(packaged.model), packaged.signatures)


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int
    finish_reason: str


class VllmChatEngine:
    """Answers one conversation with vLLM's OpenAI-chat semantics on a ``transformers`` text-generation pipeline."""

    def __init__(self, pipeline: Any) -> None:
        self.model = pipeline.model
        self.tokenizer = pipeline.tokenizer
        self.model_name = self.model.name_or_path
        self.table = TokenTable(tuple(self.tokenizer.decode([i]) for i in range(len(self.tokenizer))),
                                self.tokenizer.eos_token_id)

    def complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        prompt = self.tokenizer.apply_chat_template(_text_messages(messages), tokenize=False,
                                                    add_generation_prompt=True)
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        limit = int(params.get("max_completion_tokens") or 0) or None
        schema = _json_schema(params.get("response_format"))
        n = int(params.get("n") or 1)
        if schema is not None:
            completions = [self._guided(prompt, schema, limit)] * n
        else:
            completions = self._generate(prompt_ids, params, limit, n)
        completion_tokens = sum(c.tokens for c in completions)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": i, "message": {"role": "assistant", "content": c.text, "name": None},
                         "logprobs": None, "finish_reason": c.finish_reason} for i, c in enumerate(completions)],
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": completion_tokens,
                      "total_tokens": len(prompt_ids) + completion_tokens},
        }

    def _generate(self, prompt_ids: list[int], params: dict[str, Any], limit: int | None, n: int) -> list[Completion]:
        import torch
        import transformers

        temperature = params.get("temperature")
        sampling = temperature is None or temperature > 0  # vLLM's default temperature is 1.0
        stop = [text for text in params.get("stop") or [] if text]
        config = transformers.GenerationConfig(
            max_new_tokens=limit or self.model.config.max_position_embeddings - len(prompt_ids),
            do_sample=sampling, eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
            num_return_sequences=n if sampling else 1, stop_strings=stop or None,
            **({"temperature": temperature or 1.0, "top_p": params.get("top_p") or 1.0} if sampling else {}),
        )
        penalties = _OpenAiPenalties(len(prompt_ids), params.get("presence_penalty") or 0.0,
                                     params.get("frequency_penalty") or 0.0)
        ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            output = self.model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                         tokenizer=self.tokenizer,
                                         logits_processor=transformers.LogitsProcessorList([penalties]))
        completions = [self._finish(row[len(prompt_ids):].tolist(), stop, limit) for row in output]
        return completions if sampling else completions * n

    def _finish(self, generated: list[int], stop: list[str], limit: int | None) -> Completion:
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        if eos in generated:
            generated = generated[: generated.index(eos) + 1]  # vLLM counts the EOS token it stopped on
            return Completion(self.tokenizer.decode(generated, skip_special_tokens=True), len(generated), "stop")
        while generated and generated[-1] == pad and pad != eos:  # sequences padded after a stop string
            generated.pop()
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        cut = min((text.find(s) for s in stop if s and s in text), default=-1)
        if cut >= 0:
            return Completion(text[:cut], len(generated), "stop")
        return Completion(text, len(generated), "length" if limit is not None and len(generated) >= limit else "stop")

    def _guided(self, prompt: str, schema: dict[str, Any], limit: int | None) -> Completion:
        import torch

        def next_logits(text: str) -> list[float]:
            ids = self.tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                return self.model(input_ids=torch.tensor([ids])).logits[0, -1].tolist()

        try:
            document = GuidedJsonWriter(schema, self.table, next_logits).write()
        except SchemaError as exc:
            raise EnvelopeError(f"{MALFORMED}: response_format json_schema: {exc}") from exc
        ids = self.tokenizer(document, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
        if limit is not None and len(ids) > limit:  # guided decoding cut at max tokens: truncated JSON, "length"
            return Completion(self.tokenizer.decode(ids[:limit], skip_special_tokens=True), limit, "length")
        return Completion(document, len(ids), "stop")


class _OpenAiPenalties:
    """OpenAI presence/frequency penalties over the tokens generated so far (vLLM applies them; snowml's Python
    wrapper ignores presence_penalty)."""

    def __init__(self, prompt_length: int, presence: float, frequency: float) -> None:
        self.prompt_length = prompt_length
        self.presence = presence
        self.frequency = frequency

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not (self.presence or self.frequency):
            return scores
        import torch

        for row, ids in enumerate(input_ids[:, self.prompt_length:]):
            counts = torch.bincount(ids, minlength=scores.shape[-1])[: scores.shape[-1]].to(scores.dtype)
            scores[row] -= self.frequency * counts + self.presence * (counts > 0).to(scores.dtype)
        return scores


def _text_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """vLLM's chat parsing for string-content templates: text parts of a list content joined by newlines."""
    out = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            content = "\n".join(part.get("text", "") for part in content
                                if isinstance(part, dict) and part.get("type") == "text")
        out.append({"role": message["role"], "content": content})
    return out


def _json_schema(response_format: Any) -> dict[str, Any] | None:
    """The schema to guide by, or None. Unsent, response_format resolves to the param spec's computed default
    (type "json_schema" with every json_schema field null): that asks for nothing."""
    if response_format is None:
        return None
    kind = response_format.get("type") or "json_schema"
    schema = (response_format.get("json_schema") or {}).get("schema")
    if kind == "text" or (kind == "json_schema" and schema is None):
        return None
    if kind != "json_schema" or not isinstance(schema, dict):
        raise EnvelopeError(f"{MALFORMED}: response_format must be {{\"type\": \"json_schema\", \"json_schema\": "
                            "{\"schema\": {...}}} (or type \"text\").")
    return schema
