"""Golden tests with transformers' own apply_chat_template: our rendering equals it for the same template and special
tokens, and every family's real template accepts an agent conversation once normalised (and the strict ones refuse
it as DSS sends it)."""

import jinja2
import pytest

from chat_samples import CONVERSATIONS
from spcs_llm.dss.conversation import normalise
from spcs_llm.spcs.dss_adapter import messages_from_query
from spcs_llm.spcs.templates import FAMILY_NAMES, family_spec, render_chat, template_source

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

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


# An agent turn as DSS sends it: system, question, the assistant's tool call, the tool's result, a follow-up.
AGENT_QUERY = {"messages": [
    {"role": "system", "content": "You answer weather questions."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "toolCalls": [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    ]},
    {"role": "tool", "toolOutputs": [{"callId": "call_1", "output": "18 C, sunny"}]},
    {"role": "user", "content": "Do I need an umbrella?"},
]}
TOOL_CALL = '[Tool call] get_weather({"city": "Paris"})'
TOOL_RESULT_AND_QUESTION = "[Output of tool get_weather]\n18 C, sunny\n\nDo I need an umbrella?"
AGENT_PROMPTS = {
    "llama2": "<s>[INST] <<SYS>>\nYou answer weather questions.\n<</SYS>>\n\nWeather in Paris? [/INST] "
              f"{TOOL_CALL} </s><s>[INST] {TOOL_RESULT_AND_QUESTION} [/INST]",
    "mistral": f"<s>[INST] You answer weather questions.\n\nWeather in Paris? [/INST]{TOOL_CALL}</s> "
               f"[INST] {TOOL_RESULT_AND_QUESTION} [/INST]",
    "zephyr": "<|system|>\nYou answer weather questions.</s>\n<|user|>\nWeather in Paris?</s>\n"
              f"<|assistant|>\n{TOOL_CALL}</s>\n<|user|>\n{TOOL_RESULT_AND_QUESTION}</s>\n<|assistant|>\n",
    "chatml": "<|im_start|>system\nYou answer weather questions.<|im_end|>\n<|im_start|>user\nWeather in Paris?"
              f"<|im_end|>\n<|im_start|>assistant\n{TOOL_CALL}<|im_end|>\n<|im_start|>user\n"
              f"{TOOL_RESULT_AND_QUESTION}<|im_end|>\n<|im_start|>assistant\n",
}


def _sent_to_a_service(family: str) -> list[dict]:
    """What the chat component sends an OpenAI-chat service of ``family``: its normalised conversation."""
    return normalise(messages_from_query(AGENT_QUERY), fold_system=family_spec(family).system == "fold")


@pytest.mark.parametrize("family", sorted(AGENT_PROMPTS))
def test_an_agent_conversation_renders_exactly_through_transformers(family):
    tokenizer = _tokenizer(family)
    served = tokenizer.apply_chat_template(_sent_to_a_service(family), tokenize=False, add_generation_prompt=True)
    assert served == AGENT_PROMPTS[family]


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_a_text_generation_prompt_is_what_transformers_renders_from_the_fitted_conversation(family):
    """Strict families get the normalised conversation; lenient ones take it as DSS sent it."""
    spec = family_spec(family)
    fitted = _sent_to_a_service(family) if spec.strict_alternation else messages_from_query(AGENT_QUERY)
    expected = _tokenizer(family).apply_chat_template(fitted, tokenize=False, add_generation_prompt=True)
    assert render_chat(family, messages_from_query(AGENT_QUERY)).text == expected


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_template_accepts_the_normalised_agent_conversation(family):
    rendered = _tokenizer(family).apply_chat_template(_sent_to_a_service(family), tokenize=False,
                                                      add_generation_prompt=True)
    assert "get_weather" in rendered and "Do I need an umbrella?" in rendered


@pytest.mark.parametrize("family, refusal", [
    ("llama2", "Conversation roles must alternate"),
    ("mistral", "Conversation roles must alternate"),
])
def test_without_normalisation_the_strict_templates_raise(family, refusal):
    tokenizer = _tokenizer(family)
    with pytest.raises(jinja2.TemplateError, match=refusal):
        tokenizer.apply_chat_template(messages_from_query(AGENT_QUERY), tokenize=False, add_generation_prompt=True)


def test_mistrals_first_template_refuses_a_system_message_even_when_roles_alternate():
    tokenizer = _tokenizer("mistral")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    with pytest.raises(jinja2.TemplateError, match="Conversation roles must alternate"):
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    folded = tokenizer.apply_chat_template(normalise(messages, fold_system=True), tokenize=False)
    assert folded == "<s>[INST] Be brief.\n\nHi [/INST]"
