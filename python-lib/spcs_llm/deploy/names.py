"""The Snowflake objects a deployment lives in, named once and validated (they are pasted into SQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from urllib.parse import urlparse

from spcs_llm.core.errors import ConfigurationError

# An unquoted Snowflake identifier: what every name here may be, since it is pasted into SQL as it is.
IDENTIFIER_PATTERN = r"[A-Za-z_][A-Za-z0-9_$]*"
_IDENTIFIER = re.compile(rf"^{IDENTIFIER_PATTERN}$")
_INSTANCE_FAMILY = re.compile(r"^[A-Z0-9_]+$")
_TEXT_FIELDS = ("dss_url", "gpu_instance_family", "cpu_instance_family")


def is_identifier(text: str) -> bool:
    """True for an unquoted Snowflake identifier (letters, digits, _ and $, not starting with a digit or $)."""
    return bool(_IDENTIFIER.match(text))


@dataclass(frozen=True)
class DeploymentNames:
    """Roles, warehouse, database/schema, pools and integrations; defaults match the plugin's presets.

    ``user_role`` is the role DSS users (or the service account) call the endpoints with; the OAuth preset's
    default scope is ``session:role:SPCS_LLM_USER``. ``deployer_role`` owns the models and services.
    """

    deployer_role: str = "SPCS_LLM_DEPLOYER"
    user_role: str = "SPCS_LLM_USER"
    warehouse: str = "SPCS_LLM_WH"
    database: str = "SPCS_LLM"
    schema: str = "MODELS"
    gpu_pool: str = "SPCS_LLM_GPU_POOL"
    gpu_instance_family: str = "GPU_NV_S"
    cpu_pool: str = "SPCS_LLM_CPU_POOL"
    cpu_instance_family: str = "CPU_X64_S"
    image_repo: str = "IMAGES"
    network_rule: str = "SPCS_LLM_EGRESS"
    external_access_integration: str = "SPCS_LLM_EGRESS_EAI"
    oauth_integration: str = "SPCS_LLM_DATAIKU_OAUTH"
    hf_secret: str = "HF_TOKEN"
    dss_url: str = ""  # required by the setup SQL only (OAuth redirect); never defaulted to a placeholder

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "dss_url":
                if not value:
                    continue
                parsed = urlparse(value)
                if parsed.scheme not in ("http", "https") or not parsed.hostname or "'" in value:
                    raise ConfigurationError(
                        f"The DSS URL {value!r} is not an http(s) URL.",
                        fix="Pass --dss-url with your DSS base URL, e.g. https://dss.mycompany.com.",
                    )
                continue
            pattern = _INSTANCE_FAMILY if item.name in _TEXT_FIELDS else _IDENTIFIER
            if not isinstance(value, str) or not pattern.match(value):
                raise ConfigurationError(
                    f"{item.name} = {value!r} is not a plain Snowflake identifier.",
                    fix="Use letters, digits, '_' and '$' only, starting with a letter or '_'.",
                )

    @classmethod
    def build(cls, **overrides: str | None) -> DeploymentNames:
        """Defaults with the given (non-empty) overrides; identifiers are upper-cased as Snowflake resolves them."""
        known = {item.name for item in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(
                f"Unknown name setting(s): {', '.join(sorted(unknown))}.", fix=f"Use: {', '.join(sorted(known))}."
            )
        clean = {
            key: (value.strip().rstrip("/") if key == "dss_url" else value.strip().upper())
            for key, value in overrides.items()
            if value is not None and value.strip()
        }
        return replace(cls(), **clean)

    @property
    def schema_fqn(self) -> str:
        return f"{self.database}.{self.schema}"

    def qualify(self, name: str) -> str:
        """``NAME`` → ``DB.SCHEMA.NAME``; an already qualified name is kept."""
        return name if "." in name else f"{self.schema_fqn}.{name}"

    @property
    def image_repo_fqn(self) -> str:
        return self.qualify(self.image_repo)

    @property
    def hf_secret_fqn(self) -> str:
        return self.qualify(self.hf_secret)

    @property
    def oauth_redirect_uri(self) -> str:
        """Where Snowflake sends the user back after consent (Dataiku plugin docs, "Credential requests")."""
        if not self.dss_url:
            raise ConfigurationError(
                "The DSS URL is needed for the OAuth redirect of the security integration.",
                fix="Pass --dss-url with your DSS base URL as users open it, e.g. https://dss.mycompany.com.",
            )
        return f"{self.dss_url}/dip/api/oauth2-callback"

    def pool_for(self, uses_gpu: bool) -> tuple[str, str]:
        """(pool name, instance family) for a model's hardware."""
        return (self.gpu_pool, self.gpu_instance_family) if uses_gpu else (self.cpu_pool, self.cpu_instance_family)
