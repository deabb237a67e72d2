"""Golden strings and conversation rules of spcs_llm.spcs.templates."""

import pytest

from spcs_llm.core.errors import ConfigurationError, RequestRejectedError
from spcs_llm.spcs import config
from spcs_llm.spcs.templates import (
    FAMILY_NAMES,
    RenderedPrompt,
    family_for_model,
    family_spec,
    render_chat,
    template_source,
)

SINGLE = [{"role": "user", "content": "What is SPCS?"}]
MULTI = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
]

GOLDEN_SINGLE = {
    "llama2": "<s>[INST] What is SPCS? [/INST]",
    "zephyr": "<|user|>\nWhat is SPCS?</s>\n<|assistant|>\n",
    "mistral": "<s>[INST] What is SPCS? [/INST]",
    "phi2": "Instruct: What is SPCS?\nOutput:",
    "falcon": "User: What is SPCS?\n\nAssistant:",
    "chatml": "<|im_start|>user\nWhat is SPCS?<|im_end|>\n<|im_start|>assistant\n",
    "raw": "What is SPCS?",
}

GOLDEN_MULTI = {
    "llama2": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] 2+2? [/INST]",
    "zephyr": (
        "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
        "<|user|>\n2+2?</s>\n<|assistant|>\n"
    ),
    "mistral": "<s>[INST] Be brief.\n\nHi [/INST]Hello!</s> [INST] 2+2? [/INST]",
    "phi2": "Instruct: Be brief.\n\nHi\nOutput: Hello!\nInstruct: 2+2?\nOutput:",
    "falcon": "Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: 2+2?\n\nAssistant:",
    "chatml": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    ),
    "raw": "Be brief.\n\nHi\n\nHello!\n\n2+2?",
}

GOLDEN_STOP = {
    "llama2": ("</s>", "[INST]"),
    "zephyr": ("</s>", "<|user|>"),
    "mistral": ("</s>", "[INST]"),
    "phi2": ("<|endoftext|>", "\nInstruct:"),
    "falcon": ("<|endoftext|>", "\nUser:"),
    "chatml": ("<|im_end|>", "<|im_start|>"),
    "raw": (),
}


def test_the_families_are_the_configurable_ones():
    assert set(FAMILY_NAMES) == set(config.FAMILIES) - {"auto"}
    assert set(GOLDEN_SINGLE) == set(FAMILY_NAMES)


@pytest.mark.parametrize("family", sorted(GOLDEN_SINGLE))
def test_single_turn_golden(family):
    assert render_chat(family, SINGLE).text == GOLDEN_SINGLE[family]


@pytest.mark.parametrize("family", sorted(GOLDEN_MULTI))
def test_system_and_multi_turn_golden(family):
    assert render_chat(family, MULTI).text == GOLDEN_MULTI[family]


@pytest.mark.parametrize("family", sorted(GOLDEN_STOP))
def test_stop_strings(family):
    assert render_chat(family, SINGLE).stop == GOLDEN_STOP[family]


# ----------------------------------------------------------------------------------------------- BOS


@pytest.mark.parametrize("family", ["llama2", "mistral"])
def test_bos_comes_from_the_template_once_and_is_not_sent_twice(family):
    rendered = render_chat(family, MULTI)
    assert rendered.text.startswith("<s>") and not rendered.text.startswith("<s><s>")
    # the service's tokenizer adds BOS to a plain string itself: send without it, count with it
    assert rendered.request_text == rendered.text[len("<s>"):]
    assert rendered.model_input == rendered.text


def test_zephyr_template_emits_no_bos_but_the_model_sees_the_one_the_service_adds():
    rendered = render_chat("zephyr", SINGLE)
    assert rendered.request_text == rendered.text
    assert rendered.model_input == "<s>" + rendered.text


@pytest.mark.parametrize("family", ["phi2", "falcon", "chatml", "raw"])
def test_families_without_bos_send_and_count_the_text_as_rendered(family):
    rendered = render_chat(family, MULTI)
    assert rendered.request_text == rendered.text == rendered.model_input


def test_rendered_prompt_defaults_its_wire_and_model_texts_to_the_text():
    rendered = RenderedPrompt(text="abc", stop=())
    assert (rendered.request_text, rendered.model_input) == ("abc", "abc")


# ----------------------------------------------------------------------------------------------- conversation rules


def test_mistral_folds_the_system_text_into_the_first_user_turn():
    assert render_chat("mistral", [MULTI[0], MULTI[1]]).text == "<s>[INST] Be brief.\n\nHi [/INST]"


def test_strict_families_merge_consecutive_same_role_messages():
    messages = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "user", "content": "e"},
    ]
    assert render_chat("mistral", messages).text == "<s>[INST] a\n\nb [/INST]c\n\nd</s> [INST] e [/INST]"
    assert render_chat("llama2", messages).text == "<s>[INST] a\n\nb [/INST] c\n\nd </s><s>[INST] e [/INST]"


def test_strict_families_gather_all_system_texts_at_the_front():
    messages = [
        {"role": "system", "content": "S1"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo"},
        {"role": "system", "content": "S2"},
        {"role": "user", "content": "Q"},
    ]
    assert render_chat("llama2", messages).text == (
        "<s>[INST] <<SYS>>\nS1\n\nS2\n<</SYS>>\n\nHi [/INST] Yo </s><s>[INST] Q [/INST]"
    )


def test_a_lone_system_message_becomes_the_user_turn_for_strict_families():
    rendered = render_chat("mistral", [{"role": "system", "content": "Summarise X."}])
    assert rendered.text == "<s>[INST] Summarise X. [/INST]"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Q"}],
        [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    ],
)
@pytest.mark.parametrize("family", ["llama2", "mistral"])
def test_strict_families_need_a_user_first_and_last(family, messages):
    with pytest.raises(RequestRejectedError) as caught:
        render_chat(family, messages)
    assert "user message" in str(caught.value)


def test_lenient_families_take_any_order():
    messages = [{"role": "assistant", "content": "A"}, {"role": "assistant", "content": "B"}]
    assert render_chat("chatml", messages).text.count("<|im_start|>assistant\n") == 3


def test_phi2_keeps_a_trailing_system_text():
    text = render_chat("phi2", [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}]).text
    assert text == "Instruct: Hi\nInstruct: Be brief.\nOutput:"


def test_falcon_collapses_blank_lines_inside_a_message():
    text = render_chat("falcon", [{"role": "user", "content": "a\r\n\r\nb"}]).text
    assert text == "User: a\nb\n\nAssistant:"


def test_missing_content_renders_as_empty():
    assert render_chat("chatml", [{"role": "user", "content": None}]).text.startswith("<|im_start|>user\n<|im_end|>")


@pytest.mark.parametrize(
    "messages, needle",
    [
        ([], "no messages"),
        ([{"role": "tool", "content": "x"}], "'tool'"),
        ([{"content": "x"}], "None"),
        ([{"role": "user", "content": [{"type": "text", "text": "x"}]}], "non-text"),
    ],
)
def test_unusable_messages_are_rejected_with_a_fix(messages, needle):
    with pytest.raises(RequestRejectedError) as caught:
        render_chat("zephyr", messages)
    assert needle in str(caught.value) and "Fix:" in str(caught.value)


def test_a_template_raise_exception_becomes_a_request_rejected_error():
    # the model's own Mistral template raises on a system role; reaching it unfolded must not crash obscurely
    from spcs_llm.spcs.templates import _compiled
    from spcs_llm.spcs.templates import family_spec as spec

    with pytest.raises(RequestRejectedError, match="Only user and assistant roles"):
        _compiled("mistral").render(
            messages=[{"role": "user", "content": "x"}, {"role": "system", "content": "y"}],
            bos_token=spec("mistral").bos_token,
            eos_token="</s>",
        )


def test_unknown_family_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as caught:
        render_chat("vicuna", SINGLE)
    assert "Model family" in str(caught.value)


def test_templates_are_data_files():
    for family in FAMILY_NAMES:
        assert family_spec(family).template.endswith(".jinja")
        assert "{%" in template_source(family) or "{{" in template_source(family)


# ----------------------------------------------------------------------------------------------- auto


@pytest.mark.parametrize(
    "hint, family",
    [
        ("HuggingFaceH4/zephyr-7b-beta", "zephyr"),
        ("meta-llama/Llama-2-7b-chat-hf", "llama2"),
        ("LLAMA2_CHAT_SERVICE", "llama2"),
        ("mistralai/Mistral-7B-Instruct-v0.1", "mistral"),
        ("MIXTRAL_8X7B", "mistral"),
        ("microsoft/phi-2", "phi2"),
        ("PHI2_SVC", "phi2"),
        ("tiiuae/falcon-7b-instruct", "falcon"),
        ("Qwen/Qwen2-0.5B-Instruct", "chatml"),
        ("teknium/OpenHermes-2.5-Mistral-7B", "chatml"),
        ("cognitivecomputations/dolphin-2.6-mistral-7b", "chatml"),
        ("01-ai/Yi-6B-Chat", "chatml"),
        ("microsoft/phi-3-mini", "raw"),
        ("meta-llama/Meta-Llama-3-8B-Instruct", "raw"),
        ("abc123-myorg-myacct.snowflakecomputing.app", "raw"),
        ("", "raw"),
    ],
)
def test_family_for_model(hint, family):
    assert family_for_model(hint) == family
