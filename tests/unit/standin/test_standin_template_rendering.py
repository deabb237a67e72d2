"""The stand-in renders the family templates on its own, exactly as transformers' ``apply_chat_template`` does,
refuses what a strict template refuses without any connector code loaded, and still gives the tiny model the very
prompts the connector sends (so that it answers them); its server side stays out of the connector's modules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import tomllib

from chat_samples import CONVERSATIONS as CONVERSATIONS_SHARED
from chat_samples import SYSTEM_SINGLE
from spcs_llm.spcs.templates import FAMILY_NAMES, render_chat
from spcs_standin import chat_templates
from spcs_standin.chat_templates import client_prompts, family_names, family_template, render_family
from spcs_standin.tinychat import DOCTOR_PROBE_TEXT, TRAINED_EXCHANGES

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
ROOT = Path(__file__).resolve().parents[3]

# The conversations of the connector's golden test (tests/chat_samples.py), plus one with
# a system prompt alone before the question: what the tiny model is trained on.
CONVERSATIONS = {**CONVERSATIONS_SHARED, "system_single": SYSTEM_SINGLE}
# Mistral v0.1's own template has no system role: compare it on the conversations it accepts.
ACCEPTED = {family: sorted(CONVERSATIONS) for family in family_names()}
ACCEPTED["mistral"] = ["single", "multi"]


def _tokenizer(family: str):
    """A tokenizer carrying ``family``'s template and special tokens, as a user logs a model of that family."""
    spec = family_template(family)
    specials = [t for t in {spec.bos_token, spec.eos_token, "<unk>"} if t]
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel({t: i for i, t in enumerate(specials)},
                                                               unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    named = {"bos_token": spec.bos_token, "eos_token": spec.eos_token}
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>",
                                               **{k: v for k, v in named.items() if v})
    tok.chat_template = spec.source
    return tok


def _fresh_python(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a new interpreter with this checkout's python-lib and standin first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "python-lib"), str(ROOT / "standin"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_the_stand_in_reads_every_family_the_connector_knows():
    assert family_names() == FAMILY_NAMES


@pytest.mark.parametrize("family, conversation", [(f, c) for f in family_names() for c in ACCEPTED[f]])
def test_rendering_equals_apply_chat_template(family, conversation):
    messages = CONVERSATIONS[conversation]
    tokenizer = _tokenizer(family)
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert render_family(family, messages) == expected
    # With the tokenizer's whole special-tokens map (unk_token too), as apply_chat_template passes it.
    assert chat_templates.render_template(tokenizer.chat_template, messages,
                                          special_tokens=tokenizer.special_tokens_map) == expected


@pytest.mark.parametrize("family, messages", [
    ("llama2", [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Again"}]),
    ("llama2", [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Hi"}]),
    ("mistral", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]),
])
def test_the_stand_in_refuses_what_the_strict_template_refuses(family, messages):
    with pytest.raises(jinja2.TemplateError, match="Conversation roles must alternate") as refused:
        render_family(family, messages)
    with pytest.raises(jinja2.TemplateError) as by_transformers:
        _tokenizer(family).apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert str(refused.value) == str(by_transformers.value)


def test_the_refusal_needs_no_connector_code():
    """In a fresh process, the stand-in renders and refuses with none of the connector's modules loaded."""
    script = (
        "import sys, jinja2\n"
        "from spcs_standin.chat_templates import render_family\n"
        "assert render_family('llama2', [{'role': 'user', 'content': 'Hi'}]) == '<s>[INST] Hi [/INST]'\n"
        "try:\n"
        "    render_family('llama2', [{'role': 'user', 'content': 'a'}, {'role': 'user', 'content': 'b'}])\n"
        "except jinja2.TemplateError as exc:\n"
        "    print('refused:', exc)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['spcs_llm', 'spcs'], ['spcs_llm', 'cortex'],"
        " ['spcs_llm', 'dss'])))\n"
    )
    done = _fresh_python(script)
    assert done.stdout.splitlines() == ["refused: Conversation roles must alternate user/assistant/user/assistant/...",
                                        "[]"]


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_the_model_is_trained_on_what_the_connector_sends(family):
    """The stand-in's prompts are its own, but they must be the connector's for the tiny model to answer them."""
    for exchange in TRAINED_EXCHANGES:
        rendered = render_chat(family, exchange.messages)
        assert client_prompts(family, exchange.messages) == tuple(dict.fromkeys((rendered.request_text,
                                                                                  rendered.text)))


def test_the_doctor_probe_is_the_connectors():
    from spcs_llm.spcs.doctor import PROBE_TEXT

    assert DOCTOR_PROBE_TEXT == PROBE_TEXT


# Drive the plugin's components: they may import them (the plugin is the product being shown).
HARNESS_MODULES = {"commands", "demo", "demo_cortex", "demo_recipe", "demo_usage", "harness"}
PACKAGE = ROOT / "standin" / "spcs_standin"


def _source_files(module: str) -> list[Path]:
    """A module's file, or every file of a package (``spcs_standin.warehouse``)."""
    path = ROOT / "standin" / module.replace(".", "/")
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def test_every_stand_in_module_is_on_one_side_of_the_contract():
    """A new server-side module is in the import-linter contract, or it is part of the demo and harness."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contract = next(c for c in contracts["contracts"] if c["name"].startswith("The stand-in's server side"))
    assert set(contract["forbidden_modules"]) >= {"spcs_llm.spcs", "spcs_llm.cortex", "spcs_llm.dss"}
    server_side = {name.removeprefix("spcs_standin.") for name in contract["source_modules"]}
    modules = ({path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}) | {
        path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert not server_side & HARNESS_MODULES
    assert modules == server_side | HARNESS_MODULES


def test_a_serving_stand_in_loads_no_connector_module():
    """Import-linter sees imports; this sees what runs. Importing ``spcs_llm.deploy.…`` would run the deploy
    package's ``__init__`` (which loads connector modules), so only building a model or a LoRA adapter may."""
    script = (
        "import sys\n"
        "import spcs_standin.__main__, spcs_standin.server, spcs_standin.stack, spcs_standin.vllm_engine\n"
        "import spcs_standin.tinychat, spcs_standin.tinytools, spcs_standin.cortex_engines\n"
        "print(sorted(m for m in sys.modules if m.startswith('spcs_llm.') and not m.startswith('spcs_llm.core')))\n"
    )
    done = _fresh_python(script)
    assert done.stdout.strip() == "[]"


# What the server side may take from spcs_llm (the brief of issue 19, P3): generic utilities, and the deployment
# library's training helpers at build time. Import-linter forbids the backends and the DSS contract; this allow-list
# also keeps out the core's request and answer code (auth, transport, SSE, JSON codec, HTTP answers, config).
SERVER_SIDE_MAY_IMPORT = ("spcs_llm.core.errors", "spcs_llm.core.redaction", "spcs_llm.core.resources",
                          "spcs_llm.deploy.finetune.training")


def test_the_server_side_takes_only_utilities_and_training_helpers_from_spcs_llm():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contract = next(c for c in contracts["contracts"] if c["name"].startswith("The stand-in's server side"))
    taken = {}
    for module, path in ((m, p) for m in contract["source_modules"] for p in _source_files(m)):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            taken.update({(module, name): node.lineno for name in names if name.split(".")[0] == "spcs_llm"})
    assert {key: line for key, line in taken.items() if key[1] not in SERVER_SIDE_MAY_IMPORT} == {}
