"""Which models we know how to deploy, and how: task, hardware, chat template handling, scaling knobs.

A catalog entry is a value; ``resolve_model`` turns a catalog key *or* any Hugging Face id into one, with the
user's overrides applied. Everything the deployer and the Dataiku connection block need is decided here, so the
rest of the package never special-cases a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from ..config import FAMILIES
from ..errors import ConfigurationError

ModelKind = Literal["chat", "embedding"]
CHAT_TASK = "text-generation"
EMBEDDING_TASK = "sentence-embedding"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """How to log and serve one model.

    ``attach_chat_template``: the model ships no chat template, so the deployer attaches the family's template
    (``spcs_llm.templates.template_source``) before logging; the service then speaks OpenAI-chat rows like the
    others instead of a plain-text signature (peers-and-prompt-formats.md §3, Phi-2 and Falcon).
    ``gated``: the Hub repo needs an accepted licence and a token, held in a Snowflake SECRET.
    ``vllm_args``: when not None, the service runs on the vLLM engine with these extra engine arguments.
    """

    key: str
    hf_id: str
    kind: ModelKind
    family: str = "auto"
    attach_chat_template: bool = False
    gated: bool = False
    instance_family: str = "GPU_NV_S"
    gpu_count: int = 1
    min_instances: int = 0
    max_instances: int = 1
    num_workers: int | None = None
    max_batch_rows: int | None = None
    vllm_args: tuple[str, ...] | None = None
    revision: str | None = None
    model_name: str = ""
    service_name: str = ""
    notes: str = field(default="", compare=False)

    @property
    def task(self) -> str:
        return CHAT_TASK if self.kind == "chat" else EMBEDDING_TASK

    @property
    def uses_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def route(self) -> str:
        """The ingress path the plugin calls (spcs-protocol.md §C.2: HF chat → __call__, sentence-transformers → encode)."""
        return "__call__" if self.kind == "chat" else "encode"

    @property
    def protocol(self) -> str:
        """The plugin's protocol setting: every chat service here speaks OpenAI-chat rows; embeddings use encode."""
        return "openai_chat" if self.kind == "chat" else "encode"


def registry_name(text: str) -> str:
    """A Snowflake identifier derived from a catalog key or Hub id: ``microsoft/phi-2`` → ``PHI_2``."""
    tail = text.rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9]+", "_", tail).strip("_").upper()
    if not name or name[0].isdigit():
        name = f"M_{name}"
    return name


def _entry(key: str, hf_id: str, kind: ModelKind, **options: object) -> ModelSpec:
    model_name = registry_name(key)
    return ModelSpec(  # type: ignore[arg-type]
        key=key, hf_id=hf_id, kind=kind, model_name=model_name, service_name=f"{model_name}_SVC", **options
    )


CATALOG: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        _entry("zephyr-7b-beta", "HuggingFaceH4/zephyr-7b-beta", "chat", family="zephyr",
               notes="Ships a chat template; fits one A10G (24 GB) in bf16."),
        _entry("llama-2-7b-chat", "meta-llama/Llama-2-7b-chat-hf", "chat", family="llama2", gated=True,
               notes="Gated on the Hub: accept the licence, then store a read token in the Snowflake SECRET."),
        _entry("phi-2", "microsoft/phi-2", "chat", family="phi2", attach_chat_template=True,
               notes="Ships no chat template: the phi2 template is attached before logging."),
        _entry("falcon-7b-instruct", "tiiuae/falcon-7b-instruct", "chat", family="falcon", attach_chat_template=True,
               notes="Ships no chat template: the falcon template is attached before logging."),
        _entry("mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.2", "chat", family="mistral", gated=True,
               notes="Gated on the Hub [inf]: accept the licence, then store a read token in the Snowflake SECRET."),
        _entry("all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "embedding",
               instance_family="CPU_X64_S", gpu_count=0, max_batch_rows=64,
               notes="384-dimensional sentence embeddings; a small CPU node is enough."),
    )
}


def resolve_model(
    name: str,
    *,
    family: str | None = None,
    kind: ModelKind | None = None,
    attach_chat_template: bool | None = None,
    gated: bool | None = None,
    instance_family: str | None = None,
    gpu_count: int | None = None,
    min_instances: int | None = None,
    max_instances: int | None = None,
    num_workers: int | None = None,
    max_batch_rows: int | None = None,
    vllm_args: tuple[str, ...] | None = None,
    revision: str | None = None,
    model_name: str | None = None,
    service_name: str | None = None,
) -> ModelSpec:
    """A catalog entry (by key or by its Hub id) or a new spec for any Hub id, with the given overrides."""
    text = name.strip()
    base = CATALOG.get(text.lower()) or next((s for s in CATALOG.values() if s.hf_id.lower() == text.lower()), None)
    if base is None:
        if not _HF_ID.match(text):
            raise ConfigurationError(
                f"{name!r} is neither a catalog model nor a Hugging Face id.",
                fix=f"Use one of {', '.join(CATALOG)} or an id like 'org/model'.",
            )
        chosen_kind: ModelKind = kind or "chat"
        base = _entry(text, text, chosen_kind, **(_cpu_defaults() if chosen_kind == "embedding" else {}))
    overrides = {
        key: value
        for key, value in dict(
            family=family, kind=kind, attach_chat_template=attach_chat_template, gated=gated,
            instance_family=instance_family.upper() if instance_family else None, gpu_count=gpu_count,
            min_instances=min_instances, max_instances=max_instances, num_workers=num_workers,
            max_batch_rows=max_batch_rows, vllm_args=vllm_args, revision=revision,
            model_name=model_name.upper() if model_name else None,
            service_name=service_name.upper() if service_name else None,
        ).items()
        if value is not None
    }
    spec = replace(base, **overrides)
    _validate(spec)
    return spec


def _cpu_defaults() -> dict[str, object]:
    return {"instance_family": "CPU_X64_S", "gpu_count": 0, "max_batch_rows": 64}


def _validate(spec: ModelSpec) -> None:
    if spec.family not in FAMILIES:
        raise ConfigurationError(f"Unknown model family {spec.family!r}.", fix=f"Use one of {', '.join(FAMILIES)}.")
    if spec.attach_chat_template and spec.family in ("auto", "raw"):
        raise ConfigurationError(
            f"Model {spec.key}: attaching a chat template needs a concrete family, not {spec.family!r}.",
            fix="Pass --family (e.g. phi2, falcon, chatml) together with --attach-chat-template.",
        )
    if spec.attach_chat_template and spec.kind != "chat":
        raise ConfigurationError(f"Model {spec.key}: only chat models take a chat template.", fix="Drop --attach-chat-template.")
    for label, value in (("model name", spec.model_name), ("service name", spec.service_name)):
        if not _IDENTIFIER.match(value):
            raise ConfigurationError(
                f"The {label} {value!r} is not a plain Snowflake identifier.",
                fix="Use letters, digits and underscores only, starting with a letter.",
            )
    if spec.gpu_count < 0 or spec.min_instances < 0 or spec.max_instances < max(1, spec.min_instances):
        raise ConfigurationError(
            f"Model {spec.key}: need gpu_count >= 0 and 1 <= max_instances >= min_instances >= 0.",
            fix="Correct --gpus / --min-instances / --max-instances.",
        )
    if spec.max_batch_rows is not None and spec.max_batch_rows < 32:
        raise ConfigurationError(
            f"Model {spec.key}: max_batch_rows must be at least 32 (snowflake-ml rule), got {spec.max_batch_rows}.",
            fix="Leave --batch-rows unset or use 32 or more.",
        )
    if spec.vllm_args is not None and spec.kind != "chat":
        raise ConfigurationError("vLLM serves chat models only.", fix="Drop --vllm for embedding models.")
