"""The settings a Dataiku user pastes into the plugin's Custom LLM connection after a deployment.

Keys are the plugin's own parameter names (config.py), so the block can be pasted field by field.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cost import instance_family_rates
from .catalog import ModelSpec

OAUTH_PRESET_LABEL = "Snowflake OAuth (per user)"
SERVICE_PRESET_LABEL = "Snowflake service account"
DEFAULT_DOLLARS_PER_CREDIT = 3.0


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


def connection_settings(
    deployed: DeployedModel, *, auth_type: str = "oauth", dollars_per_credit: float = DEFAULT_DOLLARS_PER_CREDIT
) -> dict[str, object]:
    """The plugin parameters for this model, in the order the connection form shows them."""
    spec = deployed.spec
    rate = spec.credits_per_hour if spec.credits_per_hour is not None else \
        instance_family_rates().get(deployed.instance_family.upper())
    settings: dict[str, object] = {
        "endpoint": f"https://{deployed.ingress_host}",
        "route": spec.route,
        "protocol": spec.protocol,
    }
    if spec.kind == "chat":
        settings["model_family"] = spec.family
    settings.update(
        instance_family=deployed.instance_family,
        credits_per_hour=rate if rate is not None else "(family not in the shipped table: enter its credits/h)",
        dollars_per_credit=dollars_per_credit,
        # A GPU service runs one worker per instance: more parallel calls only queue (spcs-protocol.md §C.2).
        max_parallelism=(2 if spec.kind == "chat" else 4) * spec.max_instances,
    )
    if spec.kind == "embedding":
        settings["rows_per_request"] = spec.max_batch_rows or 64
    settings["auth_type"] = auth_type
    return settings


def connection_block(deployed: DeployedModel, *, dollars_per_credit: float = DEFAULT_DOLLARS_PER_CREDIT) -> str:
    """A ready-to-paste text block: model type, preset to pick, and one ``name: value`` line per parameter."""
    spec = deployed.spec
    settings = connection_settings(deployed, dollars_per_credit=dollars_per_credit)
    width = max(len(key) for key in settings)
    lines = [
        f"# Dataiku: Administration > Connections > your spcs-llm Custom LLM connection > Add model ({spec.kind})",
        f"# Model {spec.hf_id} served by {deployed.service_fqn} ({deployed.status}); callers need role {deployed.caller_role}.",
        f"# Preset: pick '{OAUTH_PRESET_LABEL}' (auth_type: oauth, scope session:role:{deployed.caller_role}),",
        f"#         or '{SERVICE_PRESET_LABEL}' with auth_type: service (a PAT or key-pair user holding {deployed.caller_role}).",
    ]
    lines += [f"{key.ljust(width)} : {value}" for key, value in settings.items()]
    return "\n".join(lines)
