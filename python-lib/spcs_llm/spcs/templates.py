"""Chat formats for legacy text-generation services: messages → one prompt string.

Services logged with an OpenAI chat signature apply the model's template themselves; this module is for the
others (a plain ``inputs`` → ``generated_text`` signature). Families whose template is strict get the
conversation in the form it accepts first (``conversation.normalise``), as the OpenAI-chat path sends it. Each
family's Jinja template is data in ``resource/chat_templates/`` — for Llama-2, Zephyr, Mistral v0.1 and ChatML the
models' own ``tokenizer_config.json`` templates, for Phi-2 and Falcon (which ship none) ours — rendered exactly as
transformers' ``apply_chat_template(..., tokenize=False, add_generation_prompt=True)`` does.

Where BOS comes from: the template. ``RenderedPrompt.text`` is the template's output verbatim (Llama-2 and
Mistral emit ``<s>``); token counts encode it without adding special tokens. When the service tokenizes a
plain string it adds BOS itself for Llama-family tokenizers, so ``request_text`` drops a leading BOS to avoid a
double one, and ``model_input`` is what the model sees (the one to count).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from spcs_llm.core.errors import ConfigurationError, RequestRejectedError
from spcs_llm.core.resources import resource_path
from spcs_llm.dss.conversation import normalise

_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class FamilySpec:
    """One chat family's metadata, read from ``families.json``."""

    name: str
    template: str
    bos_token: str | None
    eos_token: str | None
    stop: tuple[str, ...]
    system: str  # "native" or "fold"
    strict_alternation: bool
    server_adds_bos: bool
    name_patterns: tuple[str, ...]


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready for a text-generation service.

    ``text`` is exactly what the template renders. ``request_text`` (left empty: ``text``) is what to send as
    ``inputs``, and the prefix the service may echo back. ``model_input`` (left empty: ``text``) is the text whose
    tokens the model sees — count it with ``TokenCounter.count`` (which adds no special tokens). Both are plain
    ``str`` once built, so no caller has to handle a missing prompt.
    """

    text: str
    stop: tuple[str, ...]
    request_text: str = ""
    model_input: str = ""

    def __post_init__(self) -> None:
        if not self.request_text:
            object.__setattr__(self, "request_text", self.text)
        if not self.model_input:
            object.__setattr__(self, "model_input", self.text)


def _raise_from_template(message: str) -> None:
    raise RequestRejectedError(
        f"The chat template refused the conversation: {message}",
        fix="Send alternating user/assistant messages that end with a user message, or pick another "
        "'Model family'.",
    )


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    # The same environment transformers builds for apply_chat_template (utils/chat_template_utils.py).
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = _raise_from_template
    return env


@lru_cache(maxsize=1)
def _families() -> dict[str, FamilySpec]:
    path = resource_path("chat_templates", "families.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["families"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(
            f"The chat-template catalogue {path} cannot be read ({exc}).",
            fix="Reinstall the spcs-llm plugin so that resource/chat_templates/ is complete.",
        ) from None
    return {
        name: FamilySpec(
            name=name,
            template=spec["template"],
            bos_token=spec.get("bos_token"),
            eos_token=spec.get("eos_token"),
            stop=tuple(spec.get("stop", ())),
            system=spec.get("system", "native"),
            strict_alternation=bool(spec.get("strict_alternation")),
            server_adds_bos=bool(spec.get("server_adds_bos")),
            name_patterns=tuple(spec.get("name_patterns", ())),
        )
        for name, spec in raw.items()
    }


FAMILY_NAMES: tuple[str, ...] = tuple(_families())


def family_spec(family: str) -> FamilySpec:
    """The metadata of ``family``; an unknown name is a configuration error."""
    spec = _families().get(family)
    if spec is None:
        raise ConfigurationError(
            f"Unknown model family {family!r}.",
            fix=f"Set 'Model family' to auto or one of: {', '.join(FAMILY_NAMES)}.",
        )
    return spec


def template_source(family: str) -> str:
    """The Jinja source of ``family``'s chat template (e.g. to attach it to a tokenizer before ``log_model``)."""
    path = resource_path("chat_templates", family_spec(family).template)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"The chat template {path} cannot be read ({exc}).",
            fix="Reinstall the spcs-llm plugin so that resource/chat_templates/ is complete.",
        ) from None


@cache
def _compiled(family: str) -> Any:
    try:
        return _environment().from_string(template_source(family))
    except TemplateSyntaxError as exc:
        raise ConfigurationError(
            f"The chat template of family {family!r} is not valid Jinja ({exc}).",
            fix="Reinstall the spcs-llm plugin, or pick another 'Model family'.",
        ) from None


def family_for_model(hint: str) -> str:
    """Resolve 'auto': the first family whose name pattern matches a model, service or endpoint name; else raw."""
    normalised = re.sub(r"[^a-z0-9]+", "-", (hint or "").lower())
    for spec in _families().values():
        if any(re.search(pattern, normalised) for pattern in spec.name_patterns):
            return spec.name
    return "raw"


def _checked_messages(messages: Sequence[dict]) -> list[dict[str, str]]:
    if not messages:
        raise RequestRejectedError("The conversation has no messages.", fix="Send at least one user message.")
    checked = []
    for position, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in _ROLES:
            raise RequestRejectedError(
                f"Message {position} has role {role!r}; legacy text-generation services understand only "
                f"{', '.join(_ROLES)}.",
                fix="Drop tool or function messages, or serve the model with the OpenAI chat signature "
                "('Service protocol' openai_chat).",
            )
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise RequestRejectedError(
                f"Message {position} has non-text content ({type(content).__name__}).",
                fix="Send plain text content; images and other parts need an OpenAI-chat service.",
            )
        checked.append({"role": role, "content": content})
    return checked


def _fitted_turns(messages: list[dict[str, str]], spec: FamilySpec) -> list[dict[str, str]]:
    """The conversation in the form ``spec``'s template accepts (``conversation.normalise``).

    Lenient templates (any role in any order) get the conversation as it is. For the strict ones, a
    conversation of system messages only is sent as the user's turn, and it must start and end with a user
    turn, which no merging can make true.
    """
    if not spec.strict_alternation and spec.system != "fold":
        return messages
    if all(m["role"] == "system" for m in messages):
        messages = [{"role": "user", "content": m["content"]} for m in messages]
    turns = normalise(messages, fold_system=spec.system == "fold")
    dialogue = [t for t in turns if t["role"] != "system"]
    if dialogue[0]["role"] != "user" or dialogue[-1]["role"] != "user":
        raise RequestRejectedError(
            f"The {spec.name} chat format needs the conversation to start and end with a user message.",
            fix="Start the conversation with a user message and end it with the user's question.",
        )
    return turns


def render_chat(family: str, messages: Sequence[dict]) -> RenderedPrompt:
    """Render ``messages`` ({"role", "content": str}) in ``family``'s chat format, with the generation prompt."""
    spec = family_spec(family)
    checked = _fitted_turns(_checked_messages(messages), spec)
    try:
        text = _compiled(family).render(
            messages=checked,
            bos_token=spec.bos_token,
            eos_token=spec.eos_token,
            add_generation_prompt=True,
        )
    except TemplateError as exc:
        raise RequestRejectedError(
            f"The {family} chat template could not render the conversation ({exc}).",
            fix="Check the messages, or pick another 'Model family'.",
        ) from None
    request_text = text
    model_input = text
    if spec.server_adds_bos and spec.bos_token:
        # Inferred: a service with a plain `inputs` signature tokenizes the string with the tokenizer's defaults,
        # which add BOS for Llama/Mistral tokenizers (transformers TextGenerationPipeline.preprocess).
        if text.startswith(spec.bos_token):
            request_text = text[len(spec.bos_token):]
        else:
            model_input = spec.bos_token + text
    return RenderedPrompt(text=text, stop=spec.stop, request_text=request_text, model_input=model_input)
