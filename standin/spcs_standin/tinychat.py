"""Build the stand-in's tiny Llama-shaped chat model, offline, once per machine.

Recipe: a byte-level BPE tokenizer trained with ``tokenizers`` on a small corpus, a ~200k-parameter
``LlamaForCausalLM``, and a few seconds of overfitting on canned Q&A pairs until every reply token wins by a wide
logit margin, so greedy replies are the same on any CPU. The model learns each canned conversation in every chat
layout the plugin can send it: each family's prompt is rendered at build time from ``resource/chat_templates/``
by the stand-in's own ``chat_templates`` (transformers' rendering of the template files, never the connector's
code, so that a connector bug in rendering meets a model that does not answer it), and Zephyr's is also the
tokenizer's own template (what an OpenAI-chat service applies). ``spcs-llm doctor``'s probe is one of the canned
questions, so its check against the stand-in shows a sensible reply. The cache key carries a digest of the
template files and the conversations, so editing a template rebuilds the model. The result is cached under
``$SPCS_LLM_CACHE`` (or ``~/.cache/spcs-llm``) and built under a file lock, so parallel test processes never race
on it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger
from spcs_llm.core.resources import resource_path
from spcs_standin.cache import build_once, cache_root
from spcs_standin.chat_templates import client_prompts, family_names, family_template, template_source

log = get_logger(__name__)

SYSTEM_PROMPT = "You are a tiny test model."
BASE_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")
# The layout an OpenAI-chat service applies itself: the tiny model's own tokenizer template.
OWN_TEMPLATE_FAMILY = "zephyr"
# Role markers such as <|user|> or <|im_start|> in a template become single special tokens, as in the real models.
_MARKER = re.compile(r"<\|[^|<>\s]+\|>")
# Context window the stand-in enforces: room for the chat component's default 512-token completion plus a prompt.
CONTEXT_TOKENS = 2048
VOCABULARY_SIZE = 800
MAX_TRAINING_STEPS = 3000
TRAINING_CHECK_EVERY = 50
# Logit gap each reply token must keep over the runner-up: far above float noise between CPUs.
MIN_LOGIT_MARGIN = 4.0
# The one user message `spcs-llm doctor` sends a chat service (python-lib/spcs_llm/spcs/doctor.py PROBE_TEXT), copied
# so that the model never imports the connector; tests/unit/standin/test_standin_template_rendering.py holds them equal.
DOCTOR_PROBE_TEXT = "Hello from spcs-llm doctor."


@dataclass(frozen=True)
class CannedExchange:
    """One question the tiny model answers verbatim under greedy decoding, in every chat layout."""

    question: str
    answer: str
    with_system_prompt: bool = True

    @property
    def messages(self) -> list[dict[str, str]]:
        if self.with_system_prompt:
            return chat_messages(self.question)
        return [{"role": "user", "content": self.question}]


CANNED_EXCHANGES: tuple[CannedExchange, ...] = (
    CannedExchange("Hi there", "Hello! I am a tiny test model."),
    CannedExchange("What is 2+2?", "2+2 is 4."),
    CannedExchange("What is the capital of France?", "The capital of France is Paris."),
    CannedExchange("Name a color.", "Blue is a color."),
    CannedExchange("Say something long.", "This is a longer reply, with several words, so that stop strings and "
                   "token limits have something to cut."),
)
# The greeting without a system prompt: what the demo sends services whose template refuses one (Mistral's).
USER_ONLY_GREETING = CannedExchange(CANNED_EXCHANGES[0].question, CANNED_EXCHANGES[0].answer, with_system_prompt=False)
# What `spcs-llm doctor` asks a chat service (one user message), so its check against the stand-in reads sensibly.
DOCTOR_EXCHANGE = CannedExchange(DOCTOR_PROBE_TEXT, CANNED_EXCHANGES[0].answer, with_system_prompt=False)
TRAINED_EXCHANGES = (*CANNED_EXCHANGES, USER_ONLY_GREETING, DOCTOR_EXCHANGE)


def _recipe_digest() -> str:
    """A short digest of what the model learns: the chat-template files and the conversations. The cache key."""
    digest = hashlib.sha256(resource_path("chat_templates", "families.json").read_bytes())
    for family in family_names():
        digest.update(f"\0{family}\0{template_source(family)}".encode())
    for exchange in TRAINED_EXCHANGES:
        digest.update(f"\0{exchange}".encode())
    return digest.hexdigest()[:12]


RECIPE_VERSION = f"tinychat-v4-{_recipe_digest()}"


def chat_model_dir() -> Path:
    """Return the folder of the built tiny chat model (tokenizer + weights), building it first if needed."""
    return build_once(cache_root() / RECIPE_VERSION, "config.json", _build)


def chat_messages(question: str) -> list[dict[str, str]]:
    """The conversation a canned question is trained under (system prompt + user turn)."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def family_prompts(messages: list[dict[str, str]]) -> list[str]:
    """Every prompt text the model may be given for ``messages``, one or two per chat family.

    A text-generation service receives the prompt a client renders (without the BOS its tokenizer adds itself);
    a service applying the same template itself sees the template's own output, which differs by a leading BOS
    for Llama-2 and Mistral (``chat_templates.client_prompts``).
    """
    prompts: dict[str, None] = {}
    for family in family_names():
        prompts.update(dict.fromkeys(client_prompts(family, messages)))
    return list(prompts)


def _special_tokens() -> list[str]:
    """The base tokens, then every family's BOS/EOS and every role marker its template writes."""
    found: dict[str, None] = dict.fromkeys(BASE_SPECIAL_TOKENS)
    for family in family_names():
        spec = family_template(family)
        found.update(dict.fromkeys(t for t in (spec.bos_token, spec.eos_token) if t))
        found.update(dict.fromkeys(_MARKER.findall(spec.source)))
    return list(found)


def training_corpus() -> list[str]:
    """A small, deterministic corpus: a few stdlib docstrings, then each canned exchange in every layout."""
    import json
    import random
    import string
    import textwrap

    docs = [m.__doc__ or "" for m in (json, random, string, textwrap)]
    return [line for doc in docs for line in doc.splitlines() if line.strip()] + [
        prompt + exchange.answer for exchange in TRAINED_EXCHANGES for prompt in family_prompts(exchange.messages)
    ]


def _build_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = _special_tokens()
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCABULARY_SIZE, min_frequency=1, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(training_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        additional_special_tokens=special[len(BASE_SPECIAL_TOKENS):],
    )
    tokenizer.chat_template = template_source(OWN_TEMPLATE_FAMILY)
    return tokenizer


def _training_batch(tokenizer):  # -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    """Token ids of each canned chat in each layout, with labels masked to the reply and its </s>.

    Every layout ends the reply with the tokenizer's EOS: the one token both snowml's OpenAI-chat wrapper and the
    text-generation pipeline stop at.
    """
    pairs = []
    for exchange in TRAINED_EXCHANGES:
        own = tokenizer.apply_chat_template(exchange.messages, tokenize=False, add_generation_prompt=True)
        answer_ids = tokenizer(exchange.answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        for prompt in dict.fromkeys([own, *family_prompts(exchange.messages)]):
            pairs.append((tokenizer(prompt, add_special_tokens=False)["input_ids"], answer_ids))
    return padded_training_batch(pairs, tokenizer.pad_token_id)


def padded_training_batch(pairs: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    """The deployment library's batching, imported at build time only: importing ``spcs_llm.deploy`` runs its
    package ``__init__``, which loads connector modules, and a serving stand-in must load none of them."""
    from spcs_llm.deploy.finetune.training import padded_batch

    return padded_batch(pairs, pad_id)


@dataclass(frozen=True)
class TrainedTinyModel:
    """A tiny Llama that has learnt its conversations: the model, ready to save, and how training went."""

    model: Any
    steps: int
    loss: float


def train_tiny_llama(tokenizer: Any, batch: tuple[Any, Any, Any], *, learning_rate: float,
                     failure: ConfigurationError) -> TrainedTinyModel:
    """A ~200k-parameter Llama over ``tokenizer``, trained on ``batch`` (ids, mask, labels) until every reply token
    beats the runner-up by ``MIN_LOGIT_MARGIN`` (then greedy replies are the same on any CPU); ``failure`` is
    raised if it has not after ``MAX_TRAINING_STEPS``. Seed torch before calling it for a reproducible model."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from spcs_llm.deploy.finetune.training import smallest_margin  # at build time only: see padded_training_batch

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=CONTEXT_TOKENS, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    ids, mask, target = batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    for step in range(1, MAX_TRAINING_STEPS + 1):
        loss = model(input_ids=ids, attention_mask=mask, labels=target).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % TRAINING_CHECK_EVERY == 0 and smallest_margin(model, ids, mask, target) >= MIN_LOGIT_MARGIN:
            break
    else:
        raise failure
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return TrainedTinyModel(model, step, loss.item())


def _build(folder: Path) -> None:
    import torch

    log.info("Building the tiny chat model into %s (first use only)", folder)
    torch.manual_seed(0)
    tokenizer = _build_tokenizer()
    trained = train_tiny_llama(tokenizer, _training_batch(tokenizer), learning_rate=3e-3, failure=ConfigurationError(
        "The tiny chat model did not learn its canned replies.",
        fix=f"Delete {cache_root()} and retry; report the torch/transformers versions if it persists.",
    ))
    trained.model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    log.info("Tiny chat model built after %d steps (loss %.4f)", trained.steps, trained.loss)
