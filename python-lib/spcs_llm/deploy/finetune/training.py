"""LoRA fine-tuning of a causal-LM chat model on prompt/response pairs: the function an ML job runs.

The pairs have the Snowflake Llama 2 fine-tuning quickstart's shape (instruction + optional input → output).
Each pair is rendered with the model's own chat template (``tokenizer.apply_chat_template``) and the loss is
taken on the response tokens only, so the adapter learns to answer, not to echo prompts. Only the adapter is
saved (PEFT ``save_pretrained``: ``adapter_config.json`` + weights), which is the folder snowml's
``huggingface.PeftAdapter`` logs (``peft_adapter.py`` requires ``adapter_config.json``).

The same function runs on a GPU pool inside a Snowflake ML job and on the stand-in's tiny chat model in tests;
torch, transformers and peft are imported only when it runs, so importing ``spcs_llm.deploy`` stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger

log = get_logger(__name__)

IGNORED_LABEL = -100  # the label value transformers' causal-LM loss skips


@dataclass(frozen=True)
class TrainingExample:
    """One prompt/response pair: the instruction, its optional input text, and the wanted output."""

    instruction: str
    output: str
    input: str = ""

    @property
    def prompt(self) -> str:
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


@dataclass(frozen=True)
class LoraSettings:
    """LoRA and optimiser settings. ``max_steps`` bounds the run; with ``stop_margin`` set, training also stops
    once every response token beats the runner-up token by that many logits (greedy replies are then the
    trained answers even where float kernels round differently). ``batch_size`` (None: every pair in each step)
    bounds the pairs per step, so a large table need not fit in GPU memory at once."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    learning_rate: float = 2e-4
    max_steps: int = 100
    seed: int = 0
    system_prompt: str | None = None
    stop_margin: float | None = None
    check_every: int = 10
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1.", fix="Use e.g. batch_size=8, or leave it unset.")
        if self.rank < 1 or self.alpha < 1:
            raise ConfigurationError("LoRA rank and alpha must be positive.", fix="Use e.g. rank 8 and alpha 16.")
        if self.max_steps < 1 or self.check_every < 1:
            raise ConfigurationError("max_steps and check_every must be at least 1.", fix="Use e.g. max_steps=100.")
        if not self.learning_rate > 0:
            raise ConfigurationError("The learning rate must be positive.", fix="Use e.g. 2e-4.")


@dataclass(frozen=True)
class FinetuneResult:
    """What a run reports back: the loss of every step, where the adapter went, and how long training took."""

    adapter_dir: Path
    losses: tuple[float, ...]
    seconds: float
    margin: float | None = None


def example_messages(example: TrainingExample, system_prompt: str | None = None) -> list[dict[str, str]]:
    """The conversation a pair is trained under, and the one to ask at inference for the trained answer."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": example.prompt}]


StepCallback = Callable[[int, float], None]  # (step, loss): progress for a job's log


def finetune_lora(base_model_dir: str | Path, examples: Sequence[TrainingExample], output_dir: str | Path,
                  settings: LoraSettings = LoraSettings(), on_step: StepCallback | None = None) -> FinetuneResult:
    """Train a LoRA adapter on ``examples`` over the model in ``base_model_dir``; save it to ``output_dir``.

    Full-batch training on the rendered pairs unless ``settings.batch_size`` is set (each step then takes the next
    slice, wrapping round), seeded, at most ``settings.max_steps`` steps; ``on_step`` hears each step's loss.
    Raises ``ConfigurationError`` if there is nothing to train on or the tokenizer has no chat template.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not examples:
        raise ConfigurationError("There are no prompt/response pairs to train on.",
                                 fix="Give at least one example with an instruction and an output.")
    torch.manual_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    if not tokenizer.chat_template:
        raise ConfigurationError(f"The model in {base_model_dir} has no chat template to render the pairs with.",
                                 fix="Fine-tune a chat (instruct) model, or set tokenizer.chat_template first.")
    base = AutoModelForCausalLM.from_pretrained(str(base_model_dir))
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    ids, mask, labels = training_batch(tokenizer, examples, settings.system_prompt)
    size = settings.batch_size or len(examples)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    losses: list[float] = []
    margin = None
    started = time.monotonic()
    model.train()
    for step in range(1, settings.max_steps + 1):
        rows = step_rows(step, size, len(examples))
        loss = model(input_ids=ids[rows], attention_mask=mask[rows], labels=labels[rows]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
        if settings.stop_margin is not None and (step % settings.check_every == 0 or step == settings.max_steps):
            # Checked on the last step too, so the margin reported is always the saved adapter's, never one
            # from up to check_every steps before (the loss of any one step can still jump under Adam).
            margin = smallest_margin(model, ids, mask, labels)
            if margin >= settings.stop_margin:
                break
    seconds = time.monotonic() - started
    model.eval()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    log.info("LoRA adapter trained in %d steps (%.1f s, loss %.4f → %.4f), saved to %s",
             len(losses), seconds, losses[0], losses[-1], output_dir)
    return FinetuneResult(Path(output_dir), tuple(losses), seconds, margin)


def step_rows(step: int, batch_size: int, total: int) -> list[int]:
    """The pairs step ``step`` (from 1) trains on: consecutive slices of ``batch_size``, wrapping round."""
    start = (step - 1) * batch_size
    return [(start + offset) % total for offset in range(min(batch_size, total))]


def training_batch(tokenizer: Any, examples: Sequence[TrainingExample], system_prompt: str | None) -> tuple:
    """Token ids of each rendered pair, padded, with labels only on the response and its EOS token."""
    pairs = []
    for example in examples:
        prompt = tokenizer.apply_chat_template(example_messages(example, system_prompt), tokenize=False,
                                               add_generation_prompt=True)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(example.output + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        pairs.append((prompt_ids, answer_ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return padded_batch(pairs, pad)


def padded_batch(pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple:
    """(prompt ids, answer ids) pairs as one right-padded batch: ids, attention mask, and labels on the answers only
    (the shape every causal-LM training here uses: the LoRA job and the stand-in's tiny models)."""
    import torch

    rows = [prompt + answer for prompt, answer in pairs]
    targets = [[IGNORED_LABEL] * len(prompt) + answer for prompt, answer in pairs]
    width = max(len(row) for row in rows)
    ids = torch.tensor([row + [pad_id] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    labels = torch.tensor([t + [IGNORED_LABEL] * (width - len(t)) for t in targets])
    return ids, mask, labels


def smallest_margin(model: Any, ids: Any, mask: Any, labels: Any) -> float:
    """Smallest gap, over every response token, between the right token's logit and the best wrong one.

    With teacher forcing, a positive gap everywhere means greedy decoding reproduces every trained answer.
    """
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    model.train()
    shifted = labels[:, 1:]
    positions = shifted != IGNORED_LABEL
    scored = logits[positions]
    wanted = shifted[positions]
    right = scored.gather(1, wanted.unsqueeze(1)).squeeze(1)
    wrong = scored.scatter(1, wanted.unsqueeze(1), float("-inf")).max(dim=1).values
    return (right - wrong).min().item()
