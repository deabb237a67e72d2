"""Connection settings: DSS ``config`` dicts (llm.json params + resolved presets) → validated dataclasses.

DSS may hand INT params as floats and leaves unset params out or empty, so every reader casts and defaults
here, once. Secrets live only in ``AuthConfig`` fields marked ``repr=False``. This module holds what every backend
reads (auth presets, endpoint and timeouts, cost rates, the setting readers); each backend's model settings are in
its own package (``spcs_llm.spcs.config``, ``spcs_llm.cortex.config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlparse

from spcs_llm.core.errors import ConfigurationError, CredentialMissingError
from spcs_llm.core.redaction import register_secret

AuthKind = Literal["oauth", "pat", "keypair"]
OAuthMode = Literal["auto", "direct", "exchange"]

OAUTH_PRESET_PARAM = "oauth_preset"
SERVICE_PRESET_PARAM = "service_preset"
OAUTH_CREDENTIAL_KEY = "snowflake_oauth"

# Below the ingress's 60 s request budget (registry_model_deployment_test_base.py: "ingress will timeout after 60
# seconds").
# 'Max parallelism' is a ceiling: the limiter finds the service's capacity below it (core/limiter.py). The same
# default as the components' llm.json, for configurations that leave it out.
DEFAULT_MAX_PARALLELISM = 64
DEFAULT_READ_TIMEOUT = 55.0
# How long 502 / 503 / refused connections count as "the service is resuming" (transport.py). Based on Snowflake's
# own numbers: registry_model_deployment_test_base.py waits up to 30 min for a service to leave PENDING and then
# retries 502 / "connection refused" for another 30+60+90 s because the proxy does not wait for the model to load;
# snowml's create_service waits 30 min (service_ops.py _wait_for_service_status). A resume needs no image build, so
# 15 min covers a GPU node start, the image pull and a 7B model load (~15 GB of weights); inferred: no documented
# figure.
DEFAULT_COLD_START_TIMEOUT = 900.0


@dataclass(frozen=True)
class AuthConfig:
    """Who calls the endpoint and how. ``identity`` keys token caches and never contains a secret."""

    kind: AuthKind
    account_url: str | None = None
    role: str | None = None
    oauth_mode: OAuthMode = "auto"
    user: str | None = None
    pat_exchange: bool = False
    oauth_token: str | None = field(default=None, repr=False)
    pat: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    # Snowflake account identifier (<ORG>-<ACCOUNT> or locator) for key-pair JWT claims and login; derived from
    # the account URL's host when unset (needed when the host does not carry it, e.g. the local stand-in).
    account_identifier: str | None = None

    def __post_init__(self) -> None:
        for secret in (self.oauth_token, self.pat, self.private_key_pem, self.private_key_passphrase):
            register_secret(secret)

    def require_account_url(self, purpose: str) -> str:
        if not self.account_url:
            raise ConfigurationError(
                f"A Snowflake account URL is needed for {purpose}.",
                fix="Set 'Snowflake account URL' (https://<account>.snowflakecomputing.com) in the preset or the "
                "model.",
            )
        return self.account_url


@dataclass(frozen=True)
class EndpointConfig:
    """Where requests go and how patiently."""

    base_url: str
    route: str
    connect_timeout: float = 10.0
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_parallelism: int = DEFAULT_MAX_PARALLELISM
    max_attempts: int = 6
    max_retry_seconds: float = 120.0
    cold_start_timeout: float = DEFAULT_COLD_START_TIMEOUT

    @property
    def host(self) -> str:
        return urlparse(self.base_url).hostname or ""

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.route}"


@dataclass(frozen=True)
class CostConfig:
    instance_family: str = "GPU_NV_S"
    credits_per_hour: float | None = None
    dollars_per_credit: float = 3.0


def text_setting(config: dict, key: str) -> str | None:
    """A text setting, stripped; None when unset or blank (DSS sends empty strings for cleared fields)."""
    value = config.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def number_setting(config: dict, key: str, default: float, *, minimum: float, cast: type = float) -> Any:
    """A numeric setting at least ``minimum``; the default when unset, a ConfigurationError naming it otherwise."""
    raw = config.get(key)
    if raw in (None, ""):
        return cast(default)
    try:
        value = cast(float(raw))
    except (TypeError, ValueError):
        raise ConfigurationError(f"Setting '{key}' must be a number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigurationError(f"Setting '{key}' must be at least {minimum}, got {value}.")
    return value


Choice = TypeVar("Choice", bound=str)


def choice_setting(config: dict, key: str, allowed: tuple[Choice, ...], default: Choice) -> Choice:
    """One of ``allowed`` (typed as the caller's ``Literal``); the default when unset."""
    value = text_setting(config, key) or default
    for choice in allowed:
        if value == choice:
            return choice
    raise ConfigurationError(f"Setting '{key}' must be one of {', '.join(allowed)}; got {value!r}.")


def normalise_url(value: str, *, what: str) -> str:
    """Accept a bare host or a URL; return ``https://host[:port][/path]`` without a trailing slash."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(f"The {what} {value!r} is not a host name or an http(s) URL.")
    return text.rstrip("/")


def parse_endpoint(config: dict, *, default_route: str) -> EndpointConfig:
    raw = text_setting(config, "endpoint")
    if not raw:
        raise ConfigurationError(
            "No endpoint is set.",
            fix="Paste the ingress host from SHOW ENDPOINTS IN SERVICE <service> (or `spcs-llm deploy`'s output) "
            "into 'Endpoint'.",
        )
    url = normalise_url(raw, what="endpoint")
    parsed = urlparse(url)
    route = text_setting(config, "route")
    base = f"{parsed.scheme}://{parsed.netloc}"
    if parsed.path.strip("/") and not route:
        route = parsed.path.strip("/")
    elif parsed.path.strip("/"):
        base = url
    return EndpointConfig(
        base_url=base,
        route=(route or default_route).strip("/"),
        connect_timeout=number_setting(config, "connect_timeout", 10.0, minimum=0.1),
        read_timeout=number_setting(config, "read_timeout", DEFAULT_READ_TIMEOUT, minimum=0.1),
        max_parallelism=number_setting(config, "max_parallelism", DEFAULT_MAX_PARALLELISM, minimum=1, cast=int),
        max_attempts=number_setting(config, "max_attempts", 6, minimum=1, cast=int),
        max_retry_seconds=number_setting(config, "max_retry_seconds", 120.0, minimum=0),
        cold_start_timeout=number_setting(config, "cold_start_timeout", DEFAULT_COLD_START_TIMEOUT, minimum=0),
    )


def parse_auth(config: dict) -> AuthConfig:
    """Read the chosen preset: per-user OAuth, or a service account (PAT or key pair)."""
    auth_type = choice_setting(config, "auth_type", ("oauth", "service"), "oauth")
    model_account = text_setting(config, "account_url")
    if auth_type == "oauth":
        preset = config.get(OAUTH_PRESET_PARAM) or {}
        token = preset.get(OAUTH_CREDENTIAL_KEY)
        if isinstance(token, dict):  # tolerate a nested credential value
            token = token.get("access_token") or token.get("token")
        if not token or not str(token).strip():
            raise CredentialMissingError(
                "No Snowflake OAuth token is available for your DSS user (the credential is missing or expired)."
            )
        account = text_setting(preset, "account_url") or model_account
        return AuthConfig(
            kind="oauth",
            account_url=normalise_url(account, what="account URL") if account else None,
            account_identifier=text_setting(preset, "account_identifier"),
            role=text_setting(preset, "role"),
            oauth_mode=choice_setting(preset, "oauth_mode", get_args(OAuthMode), "auto"),
            oauth_token=str(token).strip(),
        )
    preset = config.get(SERVICE_PRESET_PARAM) or {}
    if not preset:
        raise ConfigurationError(
            "The model uses a service account but no service-account preset is selected.",
            fix="Pick a 'Snowflake service account' preset in the model's settings.",
        )
    kind = choice_setting(preset, "service_auth", ("pat", "keypair"), "pat")
    account = text_setting(preset, "account_url") or model_account
    common: dict[str, Any] = dict(
        account_url=normalise_url(account, what="account URL") if account else None,
        account_identifier=text_setting(preset, "account_identifier"),
        role=text_setting(preset, "role"),
        user=text_setting(preset, "user"),
    )
    if kind == "pat":
        pat = text_setting(preset, "pat")
        if not pat:
            raise ConfigurationError(
                "The service-account preset has no programmatic access token.",
                fix="Paste the token_secret of ALTER USER … ADD PROGRAMMATIC ACCESS TOKEN into the preset's 'PAT'.",
            )
        return AuthConfig(kind="pat", pat=pat, pat_exchange=bool(preset.get("pat_exchange")), **common)
    key = text_setting(preset, "private_key")
    if not key or not common["user"]:
        raise ConfigurationError(
            "Key-pair authentication needs both a user and a PEM private key.",
            fix="Fill 'User' and 'Private key (PEM)' in the service-account preset.",
        )
    return AuthConfig(
        kind="keypair",
        private_key_pem=normalise_pem(key),
        private_key_passphrase=text_setting(preset, "private_key_passphrase"),
        **common,
    )


def normalise_pem(key: str) -> str:
    """Restore the line breaks of a PEM key pasted into a one-line password field."""
    if "\n" in key or "-----BEGIN" not in key:
        return key
    header_end = key.index("-----", key.index("-----BEGIN") + len("-----BEGIN")) + len("-----")
    footer_start = key.index("-----END")
    body = "".join(key[header_end:footer_start].split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([key[:header_end].strip(), *lines, key[footer_start:].strip()]) + "\n"


def parse_cost(config: dict) -> CostConfig:
    override = number_setting(config, "credits_per_hour", 0.0, minimum=0.0)
    return CostConfig(
        instance_family=text_setting(config, "instance_family") or "GPU_NV_S",
        credits_per_hour=override or None,
        dollars_per_credit=number_setting(config, "dollars_per_credit", 3.0, minimum=0.0),
    )
