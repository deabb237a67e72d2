"""Register a LoRA adapter against its base model version and serve base + adapters on the vLLM engine.

snowflake-ml 2.6 signatures this module relies on (exercised in unit tests only against fakes):
- ``snowflake.ml.model.models.huggingface.PeftAdapter(*, base_model: ModelVersion, adapter_path: str | None, ...)``;
  its constructor raises when ``PlatformCapabilities.is_lora_adapters_enabled()`` is false, with the message
  "... because ENABLE_LORA_ADAPTERS is not enabled." (huggingface.py, PeftAdapter.__init__).
- ``Registry.log_model(model, *, model_name, version_name, ...)`` accepts the PeftAdapter
  (model/_packager/model_handlers/peft_adapter.py repeats the ENABLE_LORA_ADAPTERS check).
- ``ModelVersion.create_service(..., inference_engine_options: dict | None, adapters: dict[str, ModelVersion] |
  list[ModelVersion] | None)`` (model/_client/model/model_version_impl.py); the request's ``model`` param picks
  the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigurationError
from ..redaction import get_logger
from .connection import DeployedModel, connection_settings

LOGGER = get_logger(__name__)
LORA_FEATURE_FLAG = "ENABLE_LORA_ADAPTERS"


@dataclass(frozen=True)
class LoggedAdapter:
    """One adapter in the registry: either pinned to its base version or merged into a full model."""

    name: str
    model_version: Any
    merged: bool
    note: str


def _peft_adapter(base_version: Any, adapter_dir: str) -> Any:
    from snowflake.ml.model.models.huggingface import PeftAdapter

    return PeftAdapter(base_model=base_version, adapter_path=adapter_dir)


def merge_adapter(base_dir: str, adapter_dir: str, output_dir: str) -> Any:
    """Fold the LoRA weights into the base weights (peft ``merge_and_unload``) for accounts without adapters.

    Returns a text-generation pipeline of the merged weights (also saved to ``output_dir``): ``log_model`` takes a
    model object, and a pipeline logs with the chat signature as the base model did.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    merged.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return pipeline("text-generation", model=merged, tokenizer=tokenizer)


def _lacks_lora_support(error: Exception) -> bool:
    # PeftAdapter wraps the ValueError in SnowflakeMLException; the flag name is in the text (huggingface.py).
    return LORA_FEATURE_FLAG in str(error)


def log_adapter(
    registry: Any,
    base_version: Any,
    adapter_dir: str,
    name: str,
    *,
    base_model_dir: str | None = None,
    make_adapter: Callable[[Any, str], Any] = _peft_adapter,
    merge: Callable[[str, str, str], Any] = merge_adapter,
) -> LoggedAdapter:
    """Log ``adapter_dir`` as registry model ``name`` pinned to ``base_version``, or merged where LoRA is off."""
    if not Path(adapter_dir, "adapter_config.json").is_file():
        raise ConfigurationError(f"{adapter_dir} has no adapter_config.json, so it is not a LoRA adapter.",
                                 fix="Pass the directory the fine-tuning run saved its adapter to.")
    try:
        adapter = make_adapter(base_version, adapter_dir)
    except Exception as error:
        if not _lacks_lora_support(error):
            raise
        if base_model_dir is None:
            raise ConfigurationError(
                "This account does not have LoRA adapters enabled, so the adapter must be merged into the base "
                "weights, which needs them locally.",
                fix="Pass the base model directory (base_model_dir), or ask Snowflake to enable LoRA adapters.",
            ) from error
        merged = merge(base_model_dir, adapter_dir, str(Path(adapter_dir).with_name(f"{name}_merged")))
        note = f"LoRA adapters are not enabled on this account: logged {name} as a merged full model."
        LOGGER.warning(note)
        version = registry.log_model(merged, model_name=name, version_name="merged")
        return LoggedAdapter(name=name, model_version=version, merged=True, note=note)
    version = registry.log_model(adapter, model_name=name, version_name="v1")
    return LoggedAdapter(name=name, model_version=version, merged=False, note=f"{name} pinned to its base version.")


def deploy_with_adapters(
    base_version: Any, deployed: DeployedModel, adapters: list[LoggedAdapter], *, vllm_args: list[str] | None = None,
    **service_options: Any,
) -> list[dict[str, object]]:
    """Serve the base with its adapters on vLLM; one connection settings dict per adapter (one LLM Mesh model each)."""
    pinned = [adapter for adapter in adapters if not adapter.merged]
    if not pinned:
        raise ConfigurationError("No pinned adapter to serve.",
                                 fix="Deploy merged models as ordinary models (spcs-llm deploy).")
    base_version.create_service(
        service_name=deployed.service_fqn,
        adapters={adapter.name: adapter.model_version for adapter in pinned},
        inference_engine_options={"engine": "vllm", "engine_args_override": list(vllm_args or [])},
        **service_options,
    )
    served = replace(deployed, spec=replace(deployed.spec, vllm_args=tuple(vllm_args or ())))
    return [{**connection_settings(served), "engine": "vllm", "adapter": adapter.name} for adapter in pinned]
