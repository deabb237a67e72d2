"""The stand-in's own reading of the chat-family templates: the files, rendered by transformers itself.

A model service logged with a chat template renders it server-side with the tokenizer's ``apply_chat_template``
(snowml ``model/_packager/model_handlers/_openai_chat_wrapper.py``). The stand-in must render a family's template
the same way on its own, never through the connector's code, or a connector bug in rendering would train and serve
the tiny model on the same mistake and go unseen. So it reads ``resource/chat_templates/<family>.jinja`` and
``families.json`` directly and renders with transformers' ``render_jinja_template``: the very function
``PreTrainedTokenizerBase.apply_chat_template`` calls (``transformers/tokenization_utils_base.py``), with its
sandboxed Jinja environment (``transformers/utils/chat_template_utils.py``: ``ImmutableSandboxedEnvironment``,
``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``, ``raise_exception`` raising ``jinja2.TemplateError``). A strict
template's refusal is that ``TemplateError``, as inside the real server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.resources import resource_path

# What Mistral's later template revisions put between a folded system prompt and the first user text
# (mistralai/Mistral-7B-Instruct-v0.2 and v0.3 tokenizer_config.json chat_template: system_message + '\n\n' + content).
MISTRAL_SYSTEM_JOIN = "\n\n"


@dataclass(frozen=True)
class FamilyTemplate:
    """One chat family as ``families.json`` describes it, with its template's Jinja source."""

    name: str
    source: str
    bos_token: str | None
    eos_token: str | None
    system: str  # "native": the template takes a system message; "fold": clients fold it into the first user turn
    server_adds_bos: bool  # the model's tokenizer adds BOS when a service tokenizes a plain string prompt


def _catalogue_error(path: Any, exc: Exception) -> ConfigurationError:
    return ConfigurationError(f"The chat-template catalogue {path} cannot be read ({exc}).",
                              fix="Restore resource/chat_templates/ from the repository.")


def _catalogue() -> dict[str, dict[str, Any]]:
    """``families.json``'s families, read afresh each time (only builds and service start-up read it)."""
    path = resource_path("chat_templates", "families.json")
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["families"])
    except (OSError, ValueError, KeyError) as exc:
        raise _catalogue_error(path, exc) from None


def family_names() -> tuple[str, ...]:
    """Every family of ``families.json``, in file order."""
    return tuple(_catalogue())


def family_template(family: str) -> FamilyTemplate:
    """``family``'s metadata and template source, read from the resource folder."""
    catalogue = _catalogue()
    spec = catalogue.get(family)
    if spec is None:
        raise ConfigurationError(f"Unknown chat family {family!r}.", fix=f"Use one of: {', '.join(catalogue)}.")
    path = resource_path("chat_templates", spec["template"])
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _catalogue_error(path, exc) from None
    return FamilyTemplate(name=family, source=source, bos_token=spec.get("bos_token"),
                          eos_token=spec.get("eos_token"), system=spec.get("system", "native"),
                          server_adds_bos=bool(spec.get("server_adds_bos")))


def template_source(family: str) -> str:
    """The Jinja source of ``family``'s template (attached to the tiny tokenizer as a user attaches a model's)."""
    return family_template(family).source


def render_template(source: str, messages: Sequence[Mapping[str, Any]], *,
                    special_tokens: Mapping[str, str | None], add_generation_prompt: bool = True) -> str:
    """``messages`` rendered by ``source`` exactly as ``apply_chat_template(..., tokenize=False)`` renders them.

    ``special_tokens`` are what a tokenizer passes as its ``special_tokens_map`` (``bos_token``, ``eos_token``...).
    Message keys whose value is None are dropped first, as ``apply_chat_template`` does
    (``chat_template_utils._normalize_chat_messages``). Raises ``jinja2.TemplateError`` where the template refuses.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    conversation = [{key: value for key, value in message.items() if value is not None} for message in messages]
    tokens = {name: value for name, value in special_tokens.items() if value is not None}
    rendered, _ = render_jinja_template(conversations=[conversation], chat_template=source,
                                        add_generation_prompt=add_generation_prompt, **tokens)
    return str(rendered[0])


def render_family(family: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """``messages`` in ``family``'s template with the generation prompt, the special tokens from ``families.json``:
    what a service logged with that template renders, and what a client renders for a text-generation service."""
    spec = family_template(family)
    return render_template(spec.source, messages,
                           special_tokens={"bos_token": spec.bos_token, "eos_token": spec.eos_token})


def folded_system(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """A leading system message folded into the first user turn, as Mistral's later templates fold it (and as a
    client must send a "fold" family, whose first template raises on any system message): families.json "system"."""
    turns = [dict(message) for message in messages]
    if len(turns) > 1 and turns[0]["role"] == "system" and turns[1]["role"] == "user":
        system, first, *rest = turns
        return [{"role": "user", "content": system["content"] + MISTRAL_SYSTEM_JOIN + first["content"]}, *rest]
    return turns


def client_prompts(family: str, messages: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
    """The prompt texts the tiny model may be given for ``messages`` in ``family``'s layout.

    A service applying the template itself sees the template's output verbatim. A client of a plain text-generation
    service renders the same text and drops a leading BOS where the model's tokenizer adds one itself
    (transformers ``TextGenerationPipeline.preprocess`` tokenizes with the tokenizer's defaults), so as not to send
    a double BOS. For a "fold" family the system prompt is folded into the first user turn first.
    """
    spec = family_template(family)
    text = render_family(family, folded_system(messages) if spec.system == "fold" else messages)
    if spec.server_adds_bos and spec.bos_token and text.startswith(spec.bos_token):
        return text[len(spec.bos_token):], text  # what the client sends first: the order the model was trained in
    return (text,)
