"""The stand-in's tiny chat model answers every canned question in every chat layout the plugin can send it, by
a margin that survives another CPU's rounding, whatever the thread count it was built with; editing a chat
template changes its cache key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spcs_llm.core.resources import resource_dir
from spcs_llm.deploy.finetune.training import smallest_margin
from spcs_llm.spcs.templates import FAMILY_NAMES, render_chat
from spcs_standin import tinychat
from spcs_standin.tinychat import MIN_LOGIT_MARGIN, TRAINED_EXCHANGES, CannedExchange

transformers = pytest.importorskip("transformers")
PYTHON_LIB = Path(__file__).resolve().parents[3] / "python-lib"


def greedy_replies(folder: Path) -> dict[tuple[str, CannedExchange], str]:
    """(layout, exchange) → the reply a text-generation pipeline gives to the prompt the chat component sends in
    each family's layout, to that family's template applied on the server, and to the tokenizer's own template.
    The doctor's probe is among the exchanges."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    pipeline = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu")
    replies = {}
    for exchange in TRAINED_EXCHANGES:
        messages = exchange.messages
        rendered = {family: render_chat(family, messages) for family in FAMILY_NAMES}
        prompts = {family: prompt.request_text for family, prompt in rendered.items()}
        # A service logged with the family's template renders it itself: with the BOS the component leaves out.
        prompts.update({f"{family} on the server": prompt.text for family, prompt in rendered.items()})
        prompts["own template"] = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        for layout, prompt in prompts.items():
            generated = pipeline(prompt, max_new_tokens=48, do_sample=False)[0]["generated_text"]
            assert generated.startswith(prompt)
            replies[(layout, exchange)] = generated[len(prompt):].strip()
    return replies


def expected_replies() -> dict[tuple[str, CannedExchange], str]:
    return {(layout, exchange): exchange.answer for exchange in TRAINED_EXCHANGES
            for layout in (*FAMILY_NAMES, *(f"{f} on the server" for f in FAMILY_NAMES), "own template")}


def test_every_family_gets_the_canned_reply():
    assert greedy_replies(tinychat.chat_model_dir()) == expected_replies()


def test_every_reply_token_wins_by_the_margin_in_every_layout():
    folder = tinychat.chat_model_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    ids, mask, target = tinychat._training_batch(tokenizer)
    assert ids.shape[0] >= len(TRAINED_EXCHANGES) * len(FAMILY_NAMES)
    assert smallest_margin(model, ids, mask, target) >= MIN_LOGIT_MARGIN


def test_role_markers_of_the_templates_are_single_tokens():
    tokenizer = transformers.AutoTokenizer.from_pretrained(tinychat.chat_model_dir())
    for marker in ("<|user|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tokenizer(marker, add_special_tokens=False)["input_ids"]) == 1, marker


def test_a_build_on_one_thread_gives_the_same_replies(tmp_path):
    """Float sums differ with the thread count, so the weights may too; the replies must not."""
    env = {**os.environ, "SPCS_LLM_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PYTHON_LIB), os.environ.get("PYTHONPATH")]))}
    script = ("import torch; torch.set_num_threads(1); from spcs_standin import tinychat; "
              "print(tinychat.chat_model_dir())")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert greedy_replies(Path(done.stdout.strip())) == expected_replies()


def test_editing_a_chat_template_changes_the_cache_key(tmp_path, monkeypatch):
    copy = tmp_path / "resource"
    shutil.copytree(resource_dir() / "chat_templates", copy / "chat_templates")
    monkeypatch.setenv("DKU_CUSTOM_RESOURCE_FOLDER", str(copy))
    assert tinychat._recipe_digest() in tinychat.RECIPE_VERSION
    falcon = copy / "chat_templates" / "falcon.jinja"
    falcon.write_text(falcon.read_text(encoding="utf-8").replace("User: ", "Human: "), encoding="utf-8")
    assert tinychat._recipe_digest() not in tinychat.RECIPE_VERSION
