"""Serve a base chat model with its LoRA adapters on vLLM: one service, one LLM Mesh model per adapter.

The base version is logged (or reused) by the ``Deployer``; each adapter is then logged pinned to it (or reused),
and ``ModelVersion.create_service(adapters={alias: adapter_version}, inference_engine_options={"engine": "vllm",
...})`` (snowflake-ml 2.6 ``model_version_impl.py``) starts one service for all of them; a request's ``model``
parameter picks the adapter. Where the account has no LoRA support each adapter is merged into the base weights
and served as a model of its own.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger
from spcs_llm.deploy.adapters.registration import (
    MERGED_SUFFIX,
    AdapterRequest,
    LoggedAdapter,
    check_adapters,
    find_logged_adapter,
    local_adapter_dir,
    log_adapter,
)
from spcs_llm.deploy.services.catalog import ModelSpec
from spcs_llm.deploy.services.connection import DeployedModel
from spcs_llm.deploy.services.deployer import Deployer, DeployOptions

LOGGER = get_logger(__name__)
SERVICE_SUFFIX = "_LORA_SVC"


@dataclass(frozen=True)
class AdapterDeployment:
    """The base model's service and one deployed model per adapter (same service, or its own when merged)."""

    base: DeployedModel
    adapters: list[DeployedModel]
    logged: list[LoggedAdapter]
    notes: list[str] = field(default_factory=list)


def adapter_service_spec(spec: ModelSpec, service_name: str | None = None) -> ModelSpec:
    """The base spec with the adapters' own service name (the base's plain service has no adapters attached)."""
    if not spec.engine.is_vllm or spec.kind != "chat":
        raise ConfigurationError(
            f"LoRA adapters are served by the vLLM engine only; {spec.key} is set to the {spec.engine.engine} engine.",
            fix="Leave --engine unset (vLLM is the default for chat models on a GPU).",
        )
    return replace(spec, service_name=(service_name or f"{spec.model_name}{SERVICE_SUFFIX}").upper())


def serve_adapters(
    deployer: Deployer,
    spec: ModelSpec,
    requests: list[AdapterRequest],
    options: DeployOptions = DeployOptions(),
    *,
    adapter_version: str = "V1",
    base_model_dir: str | None = None,
) -> AdapterDeployment:
    """Deploy ``spec`` (a vLLM chat spec, see ``adapter_service_spec``) with ``requests`` attached; idempotent."""
    check_adapters(requests)
    logged: list[LoggedAdapter] = []

    def adapters_for(base_version: Any) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="spcs-llm-adapters-") as workdir:
            for request in requests:
                found = find_logged_adapter(deployer.registry, request, adapter_version)
                if found is None:
                    folder = local_adapter_dir(deployer.session, request, workdir)
                    found = log_adapter(deployer.registry, base_version, folder, request,
                                        version_name=adapter_version, base_model_dir=base_model_dir)
                LOGGER.info(found.note)
                logged.append(found)
        return {adapter.alias: adapter.model_version for adapter in logged if not adapter.merged}

    base = deployer.deploy(spec, options, adapters_for=adapters_for)
    notes = [adapter.note for adapter in logged]
    fresh = [adapter.alias for adapter in logged if not adapter.merged and not adapter.reused]
    if base.service_reused and fresh:
        notes.append(f"The running service {base.service_fqn} was kept: it serves the adapters it was created with, "
                     f"not {', '.join(fresh)}. Re-run with --replace to recreate it with every adapter.")
    served = [replace(base, adapter=adapter.alias) for adapter in logged if not adapter.merged]
    for adapter in (a for a in logged if a.merged):
        served.append(_deploy_merged(deployer, spec, adapter, options, adapter_version + MERGED_SUFFIX))
    return AdapterDeployment(base=base, adapters=served, logged=logged, notes=notes)


def _deploy_merged(deployer: Deployer, spec: ModelSpec, adapter: LoggedAdapter, options: DeployOptions,
                   version_name: str) -> DeployedModel:
    """A merged adapter is a full model already in the registry: the deployer reuses that version and serves it."""
    model_name = adapter.model_version.model_name
    merged_spec = replace(spec, key=adapter.alias, hf_id=f"{spec.hf_id} + LoRA {adapter.alias} (merged)",
                          model_name=model_name, service_name=f"{model_name}_SVC", attach_chat_template=False)
    return deployer.deploy(merged_spec, replace(options, version_name=version_name, replace_version=False))
