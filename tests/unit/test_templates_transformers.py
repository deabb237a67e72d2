"""Our rendering equals transformers' own apply_chat_template for the same template and special tokens."""

import pytest

from spcs_llm.templates import FAMILY_NAMES, family_spec, render_chat, template_source

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CONVERSATIONS = {
    "single": [{"role": "user", "content": "What is SPCS?"}],
    "system_multi": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "  2+2?\n"},
    ],
    "multi": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me more."},
    ],
}
# The models' own Mistral v0.1 template has no system role: compare it on conversations it accepts.
ACCEPTED = {family: sorted(CONVERSATIONS) for family in FAMILY_NAMES}
ACCEPTED["mistral"] = ["single", "multi"]


def _tokenizer(family: str):
    spec = family_spec(family)
    specials = [t for t in {spec.bos_token, spec.eos_token, "<unk>"} if t]
    vocab = {token: i for i, token in enumerate(specials)}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    named = {"bos_token": spec.bos_token, "eos_token": spec.eos_token}
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", **{k: v for k, v in named.items() if v}
    )
    tok.chat_template = template_source(family)
    return tok


@pytest.mark.parametrize(
    "family, conversation", [(f, c) for f in FAMILY_NAMES for c in ACCEPTED[f]]
)
def test_rendering_matches_apply_chat_template(family, conversation):
    messages = CONVERSATIONS[conversation]
    expected = _tokenizer(family).apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert render_chat(family, messages).text == expected


def test_the_models_own_templates_are_covered():
    assert {"llama2", "zephyr", "mistral", "chatml"} <= set(FAMILY_NAMES)
