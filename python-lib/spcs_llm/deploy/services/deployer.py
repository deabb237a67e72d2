"""Deploy a catalog model end to end, idempotently: pools → version → service → RUNNING → grant → settings.

Re-running reuses what is there: a registered version is kept, a live service (RUNNING, PENDING, SUSPENDED)
is kept and waited for. ``replace_version`` / ``replace_service`` drop and recreate instead; a FAILED service is
always recreated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from spcs_llm.core.errors import DeploymentError
from spcs_llm.core.redaction import get_logger
from spcs_llm.deploy.families import fits, instance_families
from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import ModelSpec
from spcs_llm.deploy.services.connection import DeployedModel
from spcs_llm.deploy.services.engine import check_tensor_parallel
from spcs_llm.deploy.services.lifecycle import (
    LIVE_STATES,
    Clock,
    Sleep,
    WaitSettings,
    describe_pool,
    grant_service_role,
    service_exists_in_schema,
    services_of,
    wait_until_running,
)
from spcs_llm.deploy.services.pools import PoolBilling, pool_billing
from spcs_llm.deploy.services.registry_ops import ensure_version, open_registry

log = get_logger(__name__)
# Given the base model version once it is in the registry, the adapters to serve with it (alias -> ModelVersion).
AdaptersFor = Callable[[Any], Mapping[str, Any]]


@dataclass(frozen=True)
class DeployOptions:
    version_name: str = "V1"
    replace_version: bool = False
    replace_service: bool = False
    caller_role: str | None = None
    external_access: bool = True
    wait: WaitSettings = WaitSettings()


class Deployer:
    """Deploys models into the registry schema named by ``names`` through one Snowpark session."""

    def __init__(
        self,
        session: Any,
        names: DeploymentNames | None = None,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ):
        self.session = session
        self.names = names or DeploymentNames()
        self._sleep = sleep
        self._clock = clock
        self._registry: Any | None = None

    @property
    def registry(self) -> Any:
        if self._registry is None:
            self._registry = open_registry(self.session, self.names)
        return self._registry

    def deploy(self, spec: ModelSpec, options: DeployOptions = DeployOptions(),
               adapters_for: AdaptersFor | None = None) -> DeployedModel:
        """Pools checked → version logged or reused → service created or reused → RUNNING → access granted.

        ``adapters_for`` logs (or finds) the LoRA adapters pinned to the base version; the service serves them.
        """
        names = self.names
        pool, default_family = names.pool_for(spec.uses_gpu)
        pool_row = describe_pool(self.session, pool)
        pool_family = str(pool_row.get("instance_family") or default_family).upper()
        check_pool_fits(spec, pool, pool_family)
        describe_pool(self.session, names.cpu_pool)  # remote logging and image builds run there
        outcome = ensure_version(self.registry, spec, names, options.version_name, replace=options.replace_version)
        model_version = outcome.model_version
        adapters = adapters_for(model_version) if adapters_for else None
        service_fqn = names.qualify(spec.service_name)
        job, service_reused = self._ensure_service(spec, model_version, service_fqn, pool, options, adapters)
        state = wait_until_running(
            self.session, model_version, service_fqn, job, options.wait, sleep=self._sleep, clock=self._clock
        )
        caller_role = (options.caller_role or names.user_role).upper()
        grant_service_role(self.session, service_fqn, caller_role)
        return DeployedModel(
            spec=spec,
            model_fqn=names.qualify(spec.model_name),
            version=options.version_name,
            service_fqn=service_fqn,
            status=state.status,
            ingress_host=str(state.ingress_host),
            instance_family=pool_family,
            caller_role=caller_role,
            version_reused=outcome.reused,
            service_reused=service_reused,
        )

    def _ensure_service(
        self, spec: ModelSpec, model_version: Any, service_fqn: str, pool: str, options: DeployOptions,
        adapters: Mapping[str, Any] | None,
    ) -> tuple[Any | None, bool]:
        """(deploy job or None, reused?) — keep a live service unless asked to replace it."""
        existing = services_of(model_version).get(service_fqn)
        if existing is not None:
            if existing.status in LIVE_STATES and not options.replace_service:
                log.info("Reusing service %s (%s)", service_fqn, existing.status)
                return None, True
            log.info("Replacing service %s (%s)", service_fqn, existing.status)
            model_version.delete_service(service_fqn)
        elif service_exists_in_schema(self.session, self.names.schema_fqn, spec.service_name):
            if not options.replace_service:
                raise DeploymentError(
                    f"A service named {service_fqn} exists but does not serve {spec.model_name} "
                    f"{options.version_name}.",
                    fix="Re-run with --replace to drop it, or choose another --service-name.",
                )
            self.session.sql(f"DROP SERVICE IF EXISTS {service_fqn}").collect()
        return self._create_service(spec, model_version, service_fqn, pool, options, adapters), False

    def _create_service(
        self, spec: ModelSpec, model_version: Any, service_fqn: str, pool: str, options: DeployOptions,
        adapters: Mapping[str, Any] | None,
    ) -> Any:
        arguments = service_arguments(spec, self.names, service_fqn, pool, options, adapters)
        log.info("Creating service %s on %s", service_fqn, pool)
        try:
            return model_version.create_service(**arguments)
        except Exception as exc:  # noqa: BLE001 - snowflake-ml raises SQL and ValueError alike; keep its message
            raise DeploymentError(f"create_service for {service_fqn} was refused: {exc}") from None

    def status(self) -> list[dict[str, Any]]:
        """Every service in the registry schema: name, status, ingress host (SHOW SERVICES / SHOW ENDPOINTS)."""
        schema = self.names.schema_fqn
        report = []
        for row in self.session.sql(f"SHOW SERVICES IN SCHEMA {schema}").collect():
            name = str(row["name"])
            endpoints = self.session.sql(f"SHOW ENDPOINTS IN SERVICE {schema}.{name}").collect()
            ingress = next((e["ingress_url"] for e in endpoints if e["name"] == "inference"), None)
            report.append(
                {"service": f"{schema}.{name}", "status": str(row["status"]), "ingress_host": ingress,
                 "compute_pool": row.as_dict().get("compute_pool")}
            )
        return report

    def pools(self, services: list[dict[str, Any]] | None = None,
              rates: dict[str, float] | None = None) -> list[PoolBilling]:
        """The configured GPU and CPU pools plus any pool a service runs on, with what each bills now.

        Pools that do not exist (setup not run, or torn down) are left out: they cost nothing. ``rates`` prices
        families the shipped table does not list (credits per node-hour by family name).
        """
        names = [self.names.gpu_pool, self.names.cpu_pool]
        names += [row["compute_pool"] for row in services if row.get("compute_pool")] if services else []
        report = []
        for pool in dict.fromkeys(name.upper() for name in names):
            try:
                report.append(pool_billing(describe_pool(self.session, pool), rates))
            except DeploymentError:
                log.debug("Compute pool %s not found; left out of the billing report", pool)
        return report


def service_arguments(spec: ModelSpec, names: DeploymentNames, service_fqn: str, pool: str, options: DeployOptions,
                      adapters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``ModelVersion.create_service`` keyword arguments (snowflake-ml 2.6 ``model_version_impl.py``), decided
    without a connection: the deployer passes them, ``--dry-run`` prints them."""
    arguments: dict[str, Any] = dict(
        service_name=service_fqn,
        service_compute_pool=pool,
        image_build_compute_pool=names.cpu_pool,  # inferred: the image build needs no GPU; CPU nodes are cheaper
        image_repo=names.image_repo_fqn,
        ingress_enabled=True,
        min_instances=spec.min_instances,
        max_instances=spec.max_instances,
        gpu_requests=str(spec.gpu_count) if spec.gpu_count else None,
        num_workers=spec.num_workers,
        max_batch_rows=spec.max_batch_rows,
        build_external_access_integrations=[names.external_access_integration] if options.external_access else None,
        block=False,
    )
    engine_options = spec.engine.inference_engine_options()
    if engine_options is not None:
        # vLLM needs the OpenAI-chat signature and a GPU (snowflake-ml model_version_impl.py
        # _check_huggingface_vllm_supported_model); with it snowflake-ml builds no image (service_ops.py).
        arguments["inference_engine_options"] = engine_options
    if adapters:
        arguments["adapters"] = dict(adapters)
    return arguments


def check_pool_fits(spec: ModelSpec, pool: str, family_name: str) -> None:
    """Refuse, before logging anything, a pool whose nodes cannot hold the model (or lack the GPU it needs)."""
    family = instance_families().get(family_name)
    if family is None:
        return  # a family newer than the table: nothing known to check against
    check_tensor_parallel(spec.engine.tensor_parallel_size, spec.gpu_count, family)
    if spec.uses_gpu and not family.has_gpu:
        problem = "has no GPU"
    elif spec.uses_gpu and spec.weights_gb is not None and not fits(
            spec.weights_gb, replace(family, gpu_count=min(spec.gpu_count, family.gpu_count))):
        problem = f"has too little GPU memory for ~{spec.weights_gb:.0f} GB of bf16 weights"
    else:
        return
    raise DeploymentError(
        f"Compute pool {pool} runs {family.label}, which {problem} ({spec.key}).",
        fix=f"Pass --gpu-pool with a pool of {spec.instance_family} or larger; `spcs-llm setup-sql --gpu-pool <name> "
        f"--gpu-instance-family {spec.instance_family}` writes the SQL that creates one.",
    )
