"""The LoRA training function on the stand-in's tiny chat model: loss falls and the greedy reply changes."""

from __future__ import annotations

import json

import pytest

from error_checks import assert_fix
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.finetune.training import (
    LoraSettings,
    TrainingExample,
    example_messages,
    finetune_lora,
    training_batch,
)
from spcs_standin.tinychat import CANNED_EXCHANGES, SYSTEM_PROMPT, chat_model_dir

PAIR = TrainingExample(instruction="Name a color.", output="Blue is a color of France.")
SETTINGS = LoraSettings(learning_rate=1e-2, max_steps=200, system_prompt=SYSTEM_PROMPT, stop_margin=4.0)


def _greedy_reply(model, tokenizer, example: TrainingExample) -> str:
    import torch

    prompt = tokenizer.apply_chat_template(example_messages(example, SYSTEM_PROMPT), tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        output = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False)
    return tokenizer.decode(output[0][ids.shape[1]:], skip_special_tokens=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapter")
    return finetune_lora(chat_model_dir(), [PAIR], folder, SETTINGS)


def test_training_lowers_the_loss_and_saves_a_peft_adapter(trained):
    assert 1 < len(trained.losses) <= SETTINGS.max_steps
    # The margin is the robust check (measured on the saved adapter; every answer token wins by 4 logits); the loss
    # is read over the last check window, not at one step, which Adam can make jump on another CPU's float path.
    assert trained.margin is not None and trained.margin >= SETTINGS.stop_margin
    assert min(trained.losses[-SETTINGS.check_every:]) < trained.losses[0] / 10
    config = json.loads((trained.adapter_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == SETTINGS.rank


def test_the_adapter_changes_the_greedy_reply_to_the_trained_answer(trained):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chat_model_dir())
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(chat_model_dir()), str(trained.adapter_dir))
    base_answer = next(e.answer for e in CANNED_EXCHANGES if e.question == PAIR.instruction)
    with model.disable_adapter():
        assert _greedy_reply(model, tokenizer, PAIR) == base_answer
    assert _greedy_reply(model, tokenizer, PAIR) == PAIR.output


def test_training_is_deterministic(trained, tmp_path):
    again = finetune_lora(chat_model_dir(), [PAIR], tmp_path, SETTINGS)
    assert again.losses == trained.losses


def test_no_pairs_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="no prompt/response pairs"):
        finetune_lora(chat_model_dir(), [], tmp_path)


def test_an_instruction_with_input_is_rendered_as_one_user_turn():
    pair = TrainingExample(instruction="Summarise.", input="A long text.", output="Short.")
    assert example_messages(pair) == [{"role": "user", "content": "Summarise.\n\nA long text."}]


def test_only_the_response_and_its_eos_are_trained_on():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chat_model_dir())
    ids, mask, labels = training_batch(tokenizer, [PAIR, TrainingExample("Hi there", "Hello!")], SYSTEM_PROMPT)
    for row in range(2):
        trained = labels[row][labels[row] != -100].tolist()
        example = (PAIR, TrainingExample("Hi there", "Hello!"))[row]
        assert tokenizer.decode(trained) == example.output + tokenizer.eos_token
        length = int(mask[row].sum())
        assert ids[row][length - len(trained):length].tolist() == trained  # the response ends the real tokens


@pytest.mark.parametrize("bad", [{"rank": 0}, {"max_steps": 0}, {"learning_rate": 0.0}])
def test_bad_lora_settings_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError) as refused:
        LoraSettings(**bad)
    assert_fix(refused, {"rank": "rank 8", "max_steps": "max_steps=100", "learning_rate": "2e-4"}[next(iter(bad))])
