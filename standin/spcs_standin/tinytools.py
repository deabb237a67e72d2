"""Build the stand-in's tiny tool-calling model: it calls ``get_weather`` by itself, then answers from the result.

A sibling of the tiny chat model (``tinychat.py``: same tokenizer trainer, Llama shape, training loop and logit-margin
check) with its own recipe and cache key, so the chat model's exact replies never change. Its chat template is
Hermes-style ChatML, the layout of tool-calling open models (Qwen2.5, Hermes) that vLLM's ``hermes`` tool parser
reads: the tools' JSON schemas go into the system turn inside ``<tools></tools>``, the model answers a call as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, and a tool's result comes back in a user turn inside
``<tool_response></tool_response>``. Tools are passed to ``apply_chat_template(tools=...)`` as OpenAI-style dicts,
which is how an OpenAI-compatible server renders a request's ``tools``.

The model learns a handful of conversations (``TRAINED_CONVERSATIONS``) exactly, with and without the tiny chat
model's system prompt; anything else gets whatever it makes of it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger
from spcs_standin.cache import build_once, cache_root
from spcs_standin.tinychat import SYSTEM_PROMPT, padded_training_batch, train_tiny_llama, training_corpus

log = get_logger(__name__)

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city."}},
                       "required": ["city"]},
    },
}
WEATHER_REPORTS = {"Paris": "Sunny, 22 C", "Oslo": "Rainy, 9 C"}
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
END_OF_TURN = "<|im_end|>"
DEFAULT_SYSTEM_PROMPT = "You are a tiny tool model."
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", END_OF_TURN, TOOL_CALL_OPEN, TOOL_CALL_CLOSE,
                  "<tool_response>", "</tool_response>", "<tools>", "</tools>")
VOCABULARY_SIZE = 900
LEARNING_RATE = 3e-3

# Hermes / Qwen2.5-style ChatML with tools (tool JSON sorted by key, so the prompt does not depend on dict order).
CHAT_TEMPLATE = """{%- set system = messages[0].content if messages and messages[0].role == 'system' else none -%}
{%- if tools -%}
<|im_start|>system
{{ system or '""" + DEFAULT_SYSTEM_PROMPT + """' }}

# Tools
You may call functions. Their signatures are within <tools></tools>:
<tools>
{% for tool in tools %}{{ tool | tojson(sort_keys=True) }}
{% endfor %}</tools>
Answer each call as <tool_call>{"name": <name>, "arguments": <object>}</tool_call>.<|im_end|>
{% elif system %}<|im_start|>system
{{ system }}<|im_end|>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'user' %}<|im_start|>user
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' %}<|im_start|>assistant
{% if message.content %}{{ message.content }}{% endif -%}
{%- for call in message.tool_calls or [] %}<tool_call>
{"name": "{{ call.function.name }}", "arguments":
{%- if call.function.arguments is string %} {{ call.function.arguments }}
{%- else %} {{ call.function.arguments | tojson }}
{%- endif %}}
</tool_call>{% endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif -%}"""


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """One call as the model writes it (``json.dumps`` spacing, so re-serialised arguments match its text)."""
    return f'{TOOL_CALL_OPEN}\n{{"name": "{name}", "arguments": {json.dumps(arguments)}}}\n{TOOL_CALL_CLOSE}'


def weather_call(city: str, call_id: str = "call_0") -> dict[str, Any]:
    """An OpenAI-style assistant tool call, as a conversation's history carries it."""
    return {"id": call_id, "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}


@dataclass(frozen=True)
class ToolConversation:
    """Messages (OpenAI form) and tools, and the reply the model learns for them."""

    messages: tuple[dict[str, Any], ...]
    tools: bool
    reply: str


def _weather_round(city: str) -> ToolConversation:
    question = {"role": "user", "content": f"What is the weather in {city}?"}
    called = {"role": "assistant", "content": None, "tool_calls": [weather_call(city)]}
    result = {"role": "tool", "tool_call_id": "call_0", "content": WEATHER_REPORTS[city]}
    return ToolConversation((question, called, result), True, f"The weather in {city} is: {WEATHER_REPORTS[city]}.")


def _asked(question: str, tools: bool, reply: str) -> ToolConversation:
    return ToolConversation(({"role": "user", "content": question},), tools, reply)


TRAINED_CONVERSATIONS: tuple[ToolConversation, ...] = (
    *(_asked(f"What is the weather in {city}?", True, tool_call_text("get_weather", {"city": city}))
      for city in WEATHER_REPORTS),
    _asked("What is the weather in Paris and Oslo?", True,
           tool_call_text("get_weather", {"city": "Paris"}) + tool_call_text("get_weather", {"city": "Oslo"})),
    *(_weather_round(city) for city in WEATHER_REPORTS),
    _asked("Hi there", True, "Hello! I can look up the weather for you."),
    _asked("Hi there", False, "Hello! I am a tiny tool model."),
    _asked("What is the weather in Paris?", False, "I need a weather tool to answer that."),
)


def _variants(conversation: ToolConversation) -> list[list[dict[str, Any]]]:
    """The conversation without a system prompt and with the tiny chat model's one."""
    plain = list(conversation.messages)
    return [plain, [{"role": "system", "content": SYSTEM_PROMPT}, *plain]]


def _recipe_digest() -> str:
    digest = hashlib.sha256(CHAT_TEMPLATE.encode())
    digest.update(json.dumps([WEATHER_TOOL, [vars(c) for c in TRAINED_CONVERSATIONS]], sort_keys=True).encode())
    return digest.hexdigest()[:12]


RECIPE_VERSION = f"tinytools-v1-{_recipe_digest()}"


def tools_model_dir() -> Path:
    """The folder of the built tiny tool-calling model, building it first if needed (a few seconds on CPU)."""
    return build_once(cache_root() / RECIPE_VERSION, "config.json", _build)


def _prompt(tokenizer: Any, messages: list[dict[str, Any]], tools: bool) -> str:
    return tokenizer.apply_chat_template(messages, tools=[WEATHER_TOOL] if tools else None, tokenize=False,
                                         add_generation_prompt=True)


def _build_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCABULARY_SIZE, min_frequency=1, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    seed_tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), chat_template=CHAT_TEMPLATE)
    dialogues = [_prompt(seed_tokenizer, m, c.tools) + c.reply for c in TRAINED_CONVERSATIONS for m in _variants(c)]
    raw.train_from_iterator(training_corpus() + dialogues, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token=END_OF_TURN, unk_token="<unk>", pad_token="<pad>",
        additional_special_tokens=list(SPECIAL_TOKENS[4:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _training_batch(tokenizer: Any) -> tuple[Any, Any, Any]:
    """Every conversation in both variants, labels masked to the reply and its end-of-turn token."""
    pairs = []
    for conversation in TRAINED_CONVERSATIONS:
        reply_ids = tokenizer(conversation.reply + END_OF_TURN, add_special_tokens=False)["input_ids"]
        for messages in _variants(conversation):
            prompt_ids = tokenizer(_prompt(tokenizer, messages, conversation.tools),
                                   add_special_tokens=False)["input_ids"]
            pairs.append((prompt_ids, reply_ids))
    return padded_training_batch(pairs, tokenizer.pad_token_id)


def _build(folder: Path) -> None:
    import torch

    log.info("Building the tiny tool-calling model into %s (first use only)", folder)
    started = time.monotonic()
    torch.manual_seed(0)
    tokenizer = _build_tokenizer()
    trained = train_tiny_llama(tokenizer, _training_batch(tokenizer), learning_rate=LEARNING_RATE,
                               failure=ConfigurationError(
        "The tiny tool-calling model did not learn its conversations.",
        fix=f"Delete {cache_root() / RECIPE_VERSION} and retry; report the torch/transformers versions if it persists.",
    ))
    trained.model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    seconds = time.monotonic() - started
    (folder / "training.json").write_text(json.dumps({"steps": trained.steps, "loss": trained.loss,
                                                      "seconds": round(seconds, 2)}))
    log.info("Tiny tool-calling model built after %d steps in %.1f s (loss %.4f)", trained.steps, seconds,
             trained.loss)
