"""Which inference engine serves a chat model, and the vLLM arguments a user may tune, checked before any Snowflake
call.

snowflake-ml 2.6 serves a model on vLLM when ``create_service`` gets ``inference_engine_options={"engine": "vllm",
"engine_args_override": [...]}``; it accepts that only for a Hugging Face pipeline of a text-generation task logged
with the OpenAI-chat ``messages`` signature (``model_version_impl.py`` ``_check_huggingface_vllm_supported_model``),
and the engine needs a GPU. Every chat model this package logs meets those, so vLLM is the default for chat models:
it honours json_schema and reports real finish reasons. ``python`` keeps snowflake-ml's own Python server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.families import InstanceFamily

EngineName = Literal["vllm", "python"]
ENGINES: tuple[EngineName, ...] = ("vllm", "python")
# Arguments snowflake-ml drops with a warning (model_deployment_spec.py add_inference_engine_spec, block_list):
# refused here instead, so nothing the user asked for is silently ignored.
MANAGED_BY_SNOWFLAKE = frozenset({
    "--host", "--port", "--allowed-headers", "--api-key", "--lora-modules", "--enable-lora", "--prompt-adapter",
    "--ssl-keyfile", "--ssl-certfile", "--ssl-ca-certs", "--enable-ssl-refresh", "--ssl-cert-reqs", "--root-path",
    "--middleware", "--disable-frontend-multiprocessing", "--log-config-file",
})
TUNED_FLAGS = {"--max-model-len": "max_model_len", "--gpu-memory-utilization": "gpu_memory_utilization",
               "--tensor-parallel-size": "tensor_parallel_size"}


@dataclass(frozen=True)
class EngineOptions:
    """The engine and its tuning; ``engine=None`` means "the default for the model" until ``resolve_engine``."""

    engine: EngineName | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    extra_args: tuple[str, ...] = field(default=())

    @property
    def is_vllm(self) -> bool:
        return self.engine == "vllm"

    @property
    def tuned(self) -> dict[str, object]:
        """The tuning values that are set, by their vLLM flag."""
        values = {flag: getattr(self, name) for flag, name in TUNED_FLAGS.items()}
        return {flag: value for flag, value in values.items() if value is not None}

    def engine_args_override(self) -> list[str]:
        """The ``engine_args_override`` list: typed settings first, then the extra arguments as given."""
        return [f"{flag}={value:g}" if isinstance(value, float) else f"{flag}={value}"
                for flag, value in self.tuned.items()] + list(self.extra_args)

    def inference_engine_options(self) -> dict[str, Any] | None:
        """``create_service``'s ``inference_engine_options``; None keeps snowflake-ml's Python server."""
        if not self.is_vllm:
            return None
        return {"engine": "vllm", "engine_args_override": self.engine_args_override()}


def default_engine(kind: str, uses_gpu: bool) -> EngineName:
    """vLLM for chat models on a GPU (the only ones snowflake-ml serves with it), Python otherwise."""
    return "vllm" if kind == "chat" and uses_gpu else "python"


def resolve_engine(options: EngineOptions, *, model: str, kind: str, gpu_count: int, family: InstanceFamily | None,
                   context_length: int | None) -> EngineOptions:
    """The engine chosen (or defaulted) for a model, with every setting checked; raises ConfigurationError."""
    engine = options.engine or default_engine(kind, gpu_count > 0)
    if engine not in ENGINES:
        raise ConfigurationError(f"Unknown inference engine {engine!r}.", fix=f"Pass --engine {' or '.join(ENGINES)}.")
    resolved = EngineOptions(engine, options.max_model_len, options.gpu_memory_utilization,
                             options.tensor_parallel_size, tuple(options.extra_args))
    if engine == "python":
        given = [flag for flag in resolved.tuned] + list(resolved.extra_args)
        if given:
            raise ConfigurationError(f"{', '.join(given)} tune the vLLM engine, but {model} is served by the Python "
                                     "engine.", fix="Drop them, or pass --engine vllm.")
        return resolved
    if kind != "chat":
        raise ConfigurationError(f"vLLM serves chat models only; {model} is an embedding model.",
                                 fix="Pass --engine python (the default for embedding models).")
    if gpu_count < 1:
        raise ConfigurationError(f"vLLM needs a GPU; {model} is set to run on CPU.",
                                 fix="Pass --gpus 1 with a GPU --instance-family, or --engine python.")
    _check_extra_args(resolved.extra_args)
    _check_max_model_len(resolved.max_model_len, model, context_length)
    _check_memory_share(resolved.gpu_memory_utilization)
    check_tensor_parallel(resolved.tensor_parallel_size, gpu_count, family)
    return resolved


def _check_extra_args(extra_args: tuple[str, ...]) -> None:
    for argument in extra_args:
        flag = argument.split("=", 1)[0]
        if not argument.startswith("--"):
            raise ConfigurationError(f"Engine argument {argument!r} is not a vLLM flag.",
                                     fix="Write it with its '--' prefix, e.g. --engine-arg=--enforce-eager.")
        if flag in MANAGED_BY_SNOWFLAKE:
            raise ConfigurationError(f"Engine argument {flag} is set by Snowflake and cannot be overridden.",
                                     fix=f"Drop {flag}.")
        if flag in TUNED_FLAGS:
            raise ConfigurationError(f"{flag} has its own option.", fix=f"Pass {flag} VALUE instead of --engine-arg.")


def _check_max_model_len(max_model_len: int | None, model: str, context_length: int | None) -> None:
    if max_model_len is None:
        return
    if max_model_len < 1:
        raise ConfigurationError(f"--max-model-len must be a positive number of tokens, got {max_model_len}.",
                                 fix="Pass e.g. --max-model-len 4096, or leave it unset for the model's own context.")
    if context_length is not None and max_model_len > context_length:
        raise ConfigurationError(
            f"--max-model-len {max_model_len} exceeds the {context_length}-token context of {model}.",
            fix=f"Pass --max-model-len {context_length} or less.",
        )


def _check_memory_share(share: float | None) -> None:
    if share is not None and not 0 < share <= 1:
        raise ConfigurationError(f"--gpu-memory-utilization is the share of each GPU's memory vLLM may take "
                                 f"(0 < x <= 1), got {share:g}.", fix="Pass e.g. --gpu-memory-utilization 0.9.")


def check_tensor_parallel(size: int | None, gpu_count: int, family: InstanceFamily | None) -> None:
    """The tensor-parallel size fits the GPUs the service requests and divides the family's GPUs per node."""
    if size is None:
        return
    if size < 1:
        raise ConfigurationError(f"--tensor-parallel-size must be 1 or more, got {size}.",
                                 fix="Pass the number of GPUs to split the model across, e.g. 1.")
    if size > gpu_count:
        raise ConfigurationError(f"--tensor-parallel-size {size} needs {size} GPUs; the service requests {gpu_count}.",
                                 fix=f"Pass --gpus {size} (on a family with at least {size} GPUs per node).")
    if family is None:
        return
    if size > family.gpu_count:
        raise ConfigurationError(
            f"--tensor-parallel-size {size} needs {size} GPUs on one node; {family.label} has {family.gpu_count}.",
            fix=f"Use a compute pool of a family with {size} or more GPUs per node (e.g. GPU_NV_M), or a smaller size.",
        )
    if family.gpu_count % size:
        divisors = [str(n) for n in range(1, family.gpu_count + 1) if family.gpu_count % n == 0]
        raise ConfigurationError(
            f"--tensor-parallel-size {size} does not divide the {family.gpu_count} GPUs per node of {family.label}.",
            fix=f"Pass --tensor-parallel-size {', '.join(divisors[:-1])} or {divisors[-1]}.",
        )
