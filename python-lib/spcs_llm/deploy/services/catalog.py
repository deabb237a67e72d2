"""Which models we know how to deploy, and how: task, hardware, chat template handling, scaling knobs.

A catalog entry is a value; ``resolve_model`` turns a catalog key *or* any Hugging Face id into one, with the
user's overrides applied. For an id outside the catalog, kind (chat or embedding), gating, size and a pool are
read from the Hub's metadata (``hub.py``) unless the user states them. Everything the deployer and the Dataiku
connection block need is decided here, so the rest of the package never special-cases a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.families import check_instance_family, fits, instance_families, smallest_fitting_gpu_family
from spcs_llm.deploy.services.engine import EngineOptions, default_engine, resolve_engine
from spcs_llm.deploy.services.hub import OVERRIDE_FLAGS, hub_facts
from spcs_llm.spcs.config import FAMILIES

ModelKind = Literal["chat", "embedding"]
CHAT_TASK = "text-generation"
EMBEDDING_TASK = "sentence-embedding"
CPU_FAMILY = "CPU_X64_S"
GPU_FAMILY = "GPU_NV_S"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """How to log and serve one model.

    ``attach_chat_template``: the model ships no chat template, so the deployer downloads it to this machine and
    attaches the family's template before logging; the service then speaks OpenAI-chat rows like the others.
    ``gated``: the Hub repo needs an accepted licence and a token, held in a Snowflake SECRET.
    ``params_billion``: parameter count; the bf16 weights take twice that in GB (memory fit).
    ``credits_per_hour``: set for an instance family the shipped table does not list (it wins over the table).
    ``engine``: the inference engine and its vLLM settings (vLLM by default for chat models on a GPU, engine.py).
    ``context_length``: the model's context in tokens, where known (bounds vLLM's --max-model-len).
    """

    key: str
    hf_id: str
    kind: ModelKind
    family: str = "auto"
    attach_chat_template: bool = False
    gated: bool = False
    instance_family: str = GPU_FAMILY
    gpu_count: int = 1
    min_instances: int = 0
    max_instances: int = 1
    num_workers: int | None = None
    max_batch_rows: int | None = None
    engine: EngineOptions = EngineOptions("python")
    context_length: int | None = None
    revision: str | None = None
    model_name: str = ""
    service_name: str = ""
    params_billion: float | None = None
    dimensions: int | None = None
    credits_per_hour: float | None = None
    notes: str = field(default="", compare=False)

    @property
    def task(self) -> str:
        return CHAT_TASK if self.kind == "chat" else EMBEDDING_TASK

    @property
    def uses_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def vllm_args(self) -> tuple[str, ...] | None:
        """The vLLM engine arguments, or None when the Python engine serves the model."""
        return tuple(self.engine.engine_args_override()) if self.engine.is_vllm else None

    @property
    def weights_gb(self) -> float | None:
        """Size of the bf16 weights (2 bytes per parameter)."""
        return None if self.params_billion is None else 2.0 * self.params_billion

    @property
    def route(self) -> str:
        """The ingress path the plugin calls: HF chat pipelines serve ``__call__``, sentence-transformers ``encode``."""
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


def _entry(key: str, hf_id: str, kind: ModelKind, **options: Any) -> ModelSpec:
    """A catalog row; ``options`` are ModelSpec fields (a misspelt one fails at import, in every test)."""
    model_name = registry_name(key)
    if kind == "embedding":
        options = {"instance_family": CPU_FAMILY, "gpu_count": 0, "max_batch_rows": 64, **options}
    engine = EngineOptions(default_engine(kind, int(options.get("gpu_count", 1)) > 0))
    options = {"engine": engine, **options}
    return ModelSpec(key=key, hf_id=hf_id, kind=kind, model_name=model_name, service_name=f"{model_name}_SVC",
                     **options)


_GATED = "Gated on the Hub: accept the licence there, then store a read token in the Snowflake SECRET."
_OWN_TEMPLATE = "Ships its own chat template; Snowflake downloads the weights itself."
_ATTACHED = ("Ships no chat template: the weights are downloaded to the machine running the deployment, the {0} "
             "template is attached, and the model is uploaded from there.")

CATALOG: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        # The four models the project was asked for, and the 2023 instruct models beside them. context_length is
        # max_position_embeddings of each model's config.json on the Hub.
        _entry("zephyr-7b-beta", "HuggingFaceH4/zephyr-7b-beta", "chat", family="zephyr",
               context_length=32768, params_billion=7.24, notes=_OWN_TEMPLATE),
        _entry("llama-2-7b-chat", "meta-llama/Llama-2-7b-chat-hf", "chat", family="llama2", gated=True,
               context_length=4096, params_billion=6.74, notes=_GATED),
        _entry("phi-2", "microsoft/phi-2", "chat", family="phi2", attach_chat_template=True,
               context_length=2048, params_billion=2.78, notes=_ATTACHED.format("phi2")),
        _entry("falcon-7b-instruct", "tiiuae/falcon-7b-instruct", "chat", family="falcon", attach_chat_template=True,
               context_length=2048, params_billion=7.22, notes=_ATTACHED.format("falcon")),
        _entry("mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.2", "chat", family="mistral", gated=True,
               context_length=32768, params_billion=7.24, notes=_GATED),
        _entry("all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "embedding", params_billion=0.023,
               dimensions=384, notes="384 dimensions; reads at most 256 tokens per text (longer text is cut)."),
        # Current instruct models. Llama 3.x's format has no family of its own here: its services speak
        # OpenAI-chat with the model's own template, so 'auto' is right for the connection.
        _entry("llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", "chat", gated=True,
               context_length=131072, params_billion=8.03, notes=_GATED),
        _entry("llama-3.2-3b-instruct", "meta-llama/Llama-3.2-3B-Instruct", "chat", gated=True,
               context_length=131072, params_billion=3.21, notes=_GATED),
        _entry("qwen2.5-7b-instruct", "Qwen/Qwen2.5-7B-Instruct", "chat", family="chatml",
               context_length=32768, params_billion=7.62, notes=_OWN_TEMPLATE),
        _entry("mistral-7b-instruct-v0.3", "mistralai/Mistral-7B-Instruct-v0.3", "chat", family="mistral", gated=True,
               context_length=32768, params_billion=7.25, notes=_GATED),
        # Current embedding models (CPU is enough at these sizes).
        _entry("arctic-embed-m-v1.5", "Snowflake/snowflake-arctic-embed-m-v1.5", "embedding", params_billion=0.109,
               dimensions=768, notes="768 dimensions; prefix queries as the model card says for retrieval."),
        _entry("bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", "embedding", params_billion=0.033, dimensions=384,
               notes="384 dimensions, 512 tokens."),
        _entry("bge-base-en-v1.5", "BAAI/bge-base-en-v1.5", "embedding", params_billion=0.109, dimensions=768,
               notes="768 dimensions, 512 tokens."),
        _entry("e5-base-v2", "intfloat/e5-base-v2", "embedding", params_billion=0.109, dimensions=768,
               notes="768 dimensions, 512 tokens; expects 'query: ' / 'passage: ' prefixes."),
    )
}


def catalog_entry(name: str) -> ModelSpec | None:
    """The catalog entry named by its key or its Hub id, or None."""
    text = name.strip().lower()
    return CATALOG.get(text) or next((spec for spec in CATALOG.values() if spec.hf_id.lower() == text), None)


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
    engine: EngineOptions | None = None,
    revision: str | None = None,
    model_name: str | None = None,
    service_name: str | None = None,
    params_billion: float | None = None,
    credits_per_hour: float | None = None,
) -> ModelSpec:
    """A catalog entry (by key or by its Hub id) or a spec for any Hub id, with the given overrides.

    ``engine``: None (or an ``engine`` of None) picks vLLM for chat models on a GPU and Python otherwise.

    Nothing here connects to Snowflake, so every mistake is reported before a deployment starts.
    """
    text = name.strip()
    base = catalog_entry(text)
    if base is None:
        base = _from_hub(name, text, kind=kind, gated=gated, revision=revision, params_billion=params_billion,
                         family=family, attach_chat_template=attach_chat_template)
    if kind is not None and kind != base.kind and gpu_count is None and instance_family is None:
        base = replace(base, **_hardware_for(kind, base.params_billion))
    overrides: dict[str, Any] = {  # the arguments given, each typed by this function's signature
        key: value
        for key, value in dict(
            family=family, kind=kind, attach_chat_template=attach_chat_template, gated=gated,
            instance_family=instance_family.strip().upper() if instance_family else None, gpu_count=gpu_count,
            min_instances=min_instances, max_instances=max_instances, num_workers=num_workers,
            max_batch_rows=max_batch_rows, revision=revision,
            model_name=model_name.upper() if model_name else None,
            service_name=service_name.upper() if service_name else None,
            params_billion=params_billion, credits_per_hour=credits_per_hour,
        ).items()
        if value is not None
    }
    spec = replace(base, **overrides)
    _validate(spec)
    chosen = resolve_engine(engine or EngineOptions(), model=spec.key, kind=spec.kind, gpu_count=spec.gpu_count,
                            family=instance_families().get(spec.instance_family), context_length=spec.context_length)
    return replace(spec, engine=chosen)


def _from_hub(name: str, hf_id: str, *, kind: ModelKind | None, gated: bool | None, revision: str | None,
              params_billion: float | None, family: str | None, attach_chat_template: bool | None) -> ModelSpec:
    """A spec for a Hub id outside the catalog: stated facts win, the rest comes from the Hub's metadata."""
    if not _HF_ID.match(hf_id):
        raise ConfigurationError(
            f"{name!r} is neither a catalog model nor a Hugging Face id.",
            fix=f"Use one of {', '.join(CATALOG)} or an id like 'org/model'.",
        )
    if kind is not None and gated is not None:
        return _entry(hf_id, hf_id, kind, gated=gated, params_billion=params_billion,
                      **_hardware_for(kind, params_billion))
    facts = hub_facts(hf_id, revision)
    chosen_kind = kind or facts.kind
    if chosen_kind is None:
        raise ConfigurationError(
            f"The Hub does not say whether {hf_id} is a chat or an embedding model (pipeline "
            f"{facts.pipeline_tag or 'unset'}, library {facts.library_name or 'unset'}).",
            fix=f"Pass {OVERRIDE_FLAGS}.",
        )
    if chosen_kind == "chat" and facts.has_chat_template is False and not attach_chat_template:
        raise ConfigurationError(
            f"{hf_id} ships no chat template, so its service could not take chat messages.",
            fix="Pass --family (e.g. chatml, zephyr, mistral) with --attach-chat-template.",
        )
    size = params_billion if params_billion is not None else facts.params_billion
    return _entry(hf_id, hf_id, chosen_kind, gated=facts.gated if gated is None else gated, params_billion=size,
                  family=family or "auto", **_hardware_for(chosen_kind, size))


class _Hardware(TypedDict, total=False):
    """The ModelSpec fields that size a node for a model."""

    instance_family: str
    gpu_count: int
    max_batch_rows: int


def _hardware_for(kind: ModelKind, params_billion: float | None) -> _Hardware:
    """A CPU node for embedding models (a GPU only when one is too big for it), the cheapest fitting GPU for chat."""
    weights = None if params_billion is None else 2.0 * params_billion
    if kind == "embedding" and (weights is None or fits_cpu(weights, CPU_FAMILY)):
        return {"instance_family": CPU_FAMILY, "gpu_count": 0, "max_batch_rows": 64}
    if weights is None:
        return {"instance_family": GPU_FAMILY, "gpu_count": 1}
    family = smallest_fitting_gpu_family(weights)
    if family is None:
        raise ConfigurationError(
            f"A model of {params_billion:g}B parameters (~{weights:.0f} GB in bf16) does not fit one GPU of the "
            "listed instance families.",
            fix="Pass --instance-family with a multi-GPU family (e.g. GPU_NV_M) and --gpus with its GPU count.",
        )
    return {"instance_family": family.name, "gpu_count": 1}


def fits_cpu(weights_gb: float, family_name: str) -> bool:
    family = instance_families().get(family_name)
    return family is not None and weights_gb * 4 <= family.memory_gib  # fp32 on CPU, with room for the server


def _validate(spec: ModelSpec) -> None:
    if spec.family not in FAMILIES:
        raise ConfigurationError(f"Unknown model family {spec.family!r}.", fix=f"Use one of {', '.join(FAMILIES)}.")
    if spec.attach_chat_template and spec.family in ("auto", "raw"):
        raise ConfigurationError(
            f"Model {spec.key}: attaching a chat template needs a concrete family, not {spec.family!r}.",
            fix="Pass --family (e.g. phi2, falcon, chatml) together with --attach-chat-template.",
        )
    if spec.attach_chat_template and spec.kind != "chat":
        raise ConfigurationError(f"Model {spec.key}: only chat models take a chat template.",
                                 fix="Drop --attach-chat-template.")
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
    if spec.kind == "chat" and not spec.uses_gpu:
        raise ConfigurationError(f"Model {spec.key}: chat models are served on a GPU here.",
                                 fix="Drop --gpus 0, or pass --gpus 1 with a GPU --instance-family.")
    _validate_hardware(spec)


def _validate_hardware(spec: ModelSpec) -> None:
    """The family exists (or is priced by hand), has GPUs iff the model uses them, and holds the weights."""
    family = check_instance_family(spec.instance_family, gpu=spec.uses_gpu, credits_per_hour=spec.credits_per_hour)
    if family is None or spec.weights_gb is None:
        return
    if spec.uses_gpu and spec.gpu_count > family.gpu_count:
        raise ConfigurationError(
            f"Model {spec.key}: {family.name} has {family.gpu_count} GPU(s), {spec.gpu_count} requested.",
            fix=f"Pass --gpus {family.gpu_count} or less, or a larger --instance-family.",
        )
    if spec.uses_gpu and not fits(spec.weights_gb, replace(family, gpu_count=spec.gpu_count)):
        raise ConfigurationError(
            f"Model {spec.key} (~{spec.weights_gb:.0f} GB of bf16 weights) does not fit {spec.gpu_count} GPU(s) of "
            f"{family.label}.",
            fix="Pass a larger --instance-family (more GPU memory), or more --gpus on a multi-GPU family.",
        )
    if not spec.uses_gpu and not fits_cpu(spec.weights_gb, family.name):
        raise ConfigurationError(
            f"Model {spec.key} (~{spec.weights_gb:.1f} GB of weights) is too large for a {family.label} node.",
            fix="Pass a larger CPU --instance-family, or --gpus 1 with a GPU family.",
        )

