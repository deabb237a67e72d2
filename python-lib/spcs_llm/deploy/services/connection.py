"""The settings a Dataiku user pastes into the plugin's Custom LLM connection after a deployment.

``connection_settings`` keys are the plugin's own parameter names (config.py); ``connection_block`` shows them
with the labels and choices of the DSS forms (llm.json, parameter-set.json), so each field can be found as shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from spcs_llm.core.cost import instance_family_rates
from spcs_llm.deploy.services.catalog import ModelSpec
from spcs_llm.dss.labels import (
    CHAT_COMPONENT,
    EMBEDDING_COMPONENT,
    OAUTH_PRESET,
    SERVICE_PRESET,
    component_form,
    preset_form,
)

DEFAULT_DOLLARS_PER_CREDIT = 3.0
MAX_PARALLELISM_PER_INSTANCE = 32  # a ceiling: the connector's limiter finds the bound below it (issue 22)
MAX_PARALLELISM_LIMIT = 256  # the largest value the DSS form accepts (llm.json maxI)


def max_parallelism_ceiling(max_instances: int) -> int:
    """'Max parallelism' for a deployed service: a ceiling high enough that the adaptive bound, not it, decides.

    The limiter (core/limiter.py) grows while latency stays flat and backs off on queueing or 429, so the value only
    caps a runaway; it scales with the instances, since a GPU instance runs one worker that may batch many requests
    (vLLM) or few (create_service's num_workers docstring in snowflake-ml 2.6: 1 on GPU).
    """
    return min(MAX_PARALLELISM_LIMIT, MAX_PARALLELISM_PER_INSTANCE * max(1, max_instances))


@dataclass(frozen=True)
class DeployedModel:
    """What a deployment produced: enough to print the connection block and to report status."""

    spec: ModelSpec
    model_fqn: str
    version: str
    service_fqn: str
    status: str
    ingress_host: str
    instance_family: str
    caller_role: str
    version_reused: bool = False
    service_reused: bool = False
    adapter: str | None = None  # the LoRA adapter alias this model is, on a service serving base + adapters


def connection_settings(
    deployed: DeployedModel, *, auth_type: str = "oauth", dollars_per_credit: float = DEFAULT_DOLLARS_PER_CREDIT
) -> dict[str, object]:
    """The plugin parameters for this model (internal names), in the order the connection form shows them.

    'Credits per hour (override)' is set only for a rate the shipped table lacks; otherwise DSS reads the table.
    """
    spec = deployed.spec
    settings: dict[str, object] = {
        "endpoint": f"https://{deployed.ingress_host}",
        "route": spec.route,
        "protocol": spec.protocol,
    }
    if spec.kind == "chat":
        settings["model_family"] = spec.family
        # On vLLM (create_service's inference_engine_options, snowflake-ml 2.6 model_version_impl.py) the service
        # honours json_schema and reports real finish reasons; the connector reads that from this setting.
        settings["engine"] = spec.engine.engine or "python"
        if deployed.adapter:
            settings["adapter"] = deployed.adapter
    settings.update(
        instance_family=deployed.instance_family,
        dollars_per_credit=dollars_per_credit,
        max_parallelism=max_parallelism_ceiling(spec.max_instances),
    )
    if spec.credits_per_hour is not None:
        settings["credits_per_hour"] = spec.credits_per_hour
    if spec.kind == "embedding":
        settings["rows_per_request"] = spec.max_batch_rows or 64
    settings["auth_type"] = auth_type
    return settings


def connection_block(deployed: DeployedModel, *, dollars_per_credit: float = DEFAULT_DOLLARS_PER_CREDIT) -> str:
    """What to enter in DSS, named as the DSS forms name it: model type, preset, one ``Label: value`` per field."""
    spec = deployed.spec
    form = component_form(CHAT_COMPONENT if spec.kind == "chat" else EMBEDDING_COMPONENT)
    settings = connection_settings(deployed, dollars_per_credit=dollars_per_credit)
    role = deployed.caller_role
    lines = [
        f"Dataiku: Administration > Connections > your spcs-llm Custom LLM connection > Add model > {form.title}",
        f"Model {spec.hf_id}{f' with LoRA adapter {deployed.adapter}' if deployed.adapter else ''} served by "
        f"{deployed.service_fqn} ({deployed.status}); callers need role {role}.",
        f"{form.label('auth_type')}: '{form.shown('auth_type', 'oauth')}' with a '{preset_form(OAUTH_PRESET).title}' "
        f"preset (scope session:role:{role}),",
        f"    or '{form.shown('auth_type', 'service')}' with a '{preset_form(SERVICE_PRESET).title}' preset "
        f"(a PAT or key-pair user holding {role}).",
    ]
    lines += form.lines({key: value for key, value in settings.items() if key != "auth_type"})
    if spec.credits_per_hour is None and deployed.instance_family.upper() not in instance_family_rates():
        lines.append(f"Note: {deployed.instance_family} is not in the shipped price table; enter its rate in "
                     f"'{form.label('credits_per_hour')}'.")
    return "\n".join(lines)
