"""What the Hugging Face Hub says about a model outside the catalog: chat or embedding, gated, size, template.

Read with ``huggingface_hub.HfApi().model_info`` (metadata only, no weights). Without network access, or with
``HF_HUB_OFFLINE`` set, nothing is guessed: the caller is told which flags to pass instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from spcs_llm.core.errors import ConfigurationError

ModelKind = Literal["chat", "embedding"]
OVERRIDE_FLAGS = "--kind chat|embedding and --gated/--not-gated (optionally --instance-family, --params-billion)"
CHAT_PIPELINES = ("text-generation", "image-text-to-text")
EMBEDDING_PIPELINES = ("sentence-similarity", "feature-extraction")


@dataclass(frozen=True)
class HubFacts:
    hf_id: str
    kind: ModelKind | None  # None: the metadata does not say
    gated: bool
    params_billion: float | None
    has_chat_template: bool | None  # None: the metadata does not say
    pipeline_tag: str | None
    library_name: str | None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def kind_from_metadata(pipeline_tag: str | None, library_name: str | None, tags: list[str]) -> ModelKind | None:
    """Embedding for sentence-transformers / similarity / feature-extraction models, chat for text generation."""
    if "sentence-transformers" in (library_name, *tags) or pipeline_tag in EMBEDDING_PIPELINES:
        return "embedding"
    if pipeline_tag in CHAT_PIPELINES:
        return "chat"
    return None


def _chat_template_known(info: Any) -> bool | None:
    tokenizer_config = (getattr(info, "config", None) or {}).get("tokenizer_config")
    if not isinstance(tokenizer_config, dict):
        return None
    return bool(tokenizer_config.get("chat_template"))


def hub_facts(hf_id: str, revision: str | None = None) -> HubFacts:
    """The Hub's metadata for ``hf_id``; a ConfigurationError naming the override flags when it cannot be read."""
    if _offline():
        raise ConfigurationError(
            f"{hf_id} is not in the catalog and HF_HUB_OFFLINE is set, so its kind and gating cannot be read from "
            "the Hugging Face Hub.",
            fix=f"Unset HF_HUB_OFFLINE, or pass {OVERRIDE_FLAGS}.",
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        info = HfApi().model_info(hf_id, revision=revision, timeout=20)
    except GatedRepoError:
        raise ConfigurationError(
            f"{hf_id} is gated and the Hugging Face Hub refused to show its metadata without a token.",
            fix=f"Log in with `hf auth login` (a token that accepted the licence), or pass {OVERRIDE_FLAGS}.",
        ) from None
    except RepositoryNotFoundError:
        raise ConfigurationError(
            f"{hf_id} was not found on the Hugging Face Hub (or it is private).",
            fix="Check the id (org/model, as in the Hub's URL), or pick a catalog model (spcs-llm deploy --help).",
        ) from None
    except Exception as exc:  # noqa: BLE001 - network and HTTP errors alike: say what is missing and how to go on
        raise ConfigurationError(
            f"The Hugging Face Hub could not be reached to read {hf_id}'s metadata ({type(exc).__name__}).",
            fix=f"Retry with network access, or pass {OVERRIDE_FLAGS}.",
        ) from None
    safetensors = getattr(info, "safetensors", None)
    total = getattr(safetensors, "total", None) if safetensors is not None else None
    return HubFacts(
        hf_id=hf_id,
        kind=kind_from_metadata(info.pipeline_tag, info.library_name, list(info.tags or [])),
        gated=bool(info.gated),  # False, or "auto" / "manual" for repos that need an accepted licence
        params_billion=round(total / 1e9, 3) if total else None,
        has_chat_template=_chat_template_known(info),
        pipeline_tag=info.pipeline_tag,
        library_name=info.library_name,
    )
