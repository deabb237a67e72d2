"""Start-up configuration of the stand-in: identities, token lifetimes, services, and the command-line flags.

The same flags serve ``python -m spcs_standin`` and ``spcs-llm local``, so both start identical stand-ins.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from spcs_llm.core.errors import ConfigurationError

ServiceKind = Literal["openai_chat", "text_generation", "encode", "custom_predict"]
ModelName = Literal["chat", "embed"]
# snowml InferenceEngine values "python_generic" / "vllm" (snowflake/ml/model/inference_engine.py).
Engine = Literal["python", "vllm"]
ResumeAnswer = int | Literal["refuse"]
RESUME_ANSWERS: tuple[ResumeAnswer, ...] = (503, 502, "refuse")
ADMIN_SECRET_ENV = "SPCS_LLM_LOCAL_ADMIN_SECRET"
_TTL_FLAGS = ("authorization_code", "oauth_access", "oauth_refresh", "session", "master", "exchanged", "pat")


@dataclass(frozen=True)
class TokenLifetimes:
    """Seconds each kind of token lives (defaults: typical values from public Snowflake material)."""

    authorization_code: int = 600  # inferred: not documented; a short-lived one-time code
    oauth_access: int = 600  # Snowflake OAuth access token 600 s (Progress DataDirect docs)
    oauth_refresh: int = 7_776_000  # OAUTH_REFRESH_TOKEN_VALIDITY 90 days (public examples; inferred)
    session: int = 3600  # validityInSeconds typically 3600 (connector test mocks; inferred)
    master: int = 14_400  # masterValidityInSeconds about 4 h (connector test mocks; inferred)
    exchanged: int = 3600  # /oauth/token answer: short-lived, about 1 h or less (inferred)
    pat: int = 15 * 86_400  # PAT default expiry 15 days (third-party docs; inferred)
    keypair_jwt_max: int = 3600  # Snowflake caps the key-pair JWT at 1 h (inferred; jwt_generator.py)


@dataclass(frozen=True)
class ResumePhase:
    """One phase of a service resuming from suspension: what the ingress answers, and for how long.

    503: the service is resuming (the ingress has no instance yet). 502: the instance is RUNNING but its model
    server is still loading; Snowflake's registry tests retry it ("Proxy doesn't wait for model loading in the
    inference server", registry_model_deployment_test_base.py). "refuse": connections are reset before any
    answer, like the "connection refused" those tests also retry (a reset after connect rather than a refused
    connect, since the port stays bound; a client sees a connection error either way).
    """

    answer: ResumeAnswer
    seconds: float

    def __post_init__(self) -> None:
        if self.answer not in RESUME_ANSWERS:
            raise ConfigurationError(f"Unknown resume answer {self.answer!r}.",
                                     fix="Use 503, 502 or \"refuse\" for each phase.")
        if self.seconds < 0:
            raise ConfigurationError("A resume phase cannot last a negative time.", fix="Use 0 or more seconds.")


@dataclass(frozen=True)
class ServiceSpec:
    """One model service with its own ingress port.

    ``kind`` is what the model was logged as (snowflake-ml ``model/_signatures/utils.py``,
    ``openai_signatures.py``); ``legacy_json_output`` selects the ≤1.7 text-generation encoding where ``outputs``
    is a JSON string. ``template_family`` picks the chat template an OpenAI-chat service was logged with (None:
    the tiny model's own Zephyr-style one); ``engine`` is how it is served (snowml's Python wrapper or vLLM).
    ``resume_phases`` starts the service suspended: the first request begins a resume through those phases.
    """

    name: str
    kind: ServiceKind
    model: ModelName
    workers: int = 1
    queue: int = 2
    legacy_json_output: bool = False
    cold_start_s: float = 0.0
    template_family: str | None = None
    engine: Engine = "python"
    resume_phases: tuple[ResumePhase, ...] = ()
    lora: bool = False  # also serves the tiny LoRA adapter, chosen by the `model` param (local/lora_engine.py)

    @property
    def capacity(self) -> int:
        """In-flight requests admitted before 429: the workers plus a small queue
        (like _CONCURRENT_REQUESTS_MAX in snowflake-ml 1.6.2 ``inference_server/main.py``)."""
        return self.workers + self.queue


# The alias of the adapter chat_lora always serves (local/lora_engine.py ADAPTER_ALIAS; kept here so that parsing
# the flags never imports the model code).
BUILT_IN_ADAPTER = "tiny_chat_lora"

# OpenAI-chat services logged with a model family's real chat template (resource/chat_templates), one each.
TEMPLATE_SERVICE_FAMILIES = ("llama2", "mistral", "chatml", "phi2", "falcon")


def default_services(workers: int = 1, queue: int = 2) -> tuple[ServiceSpec, ...]:
    """The services a stand-in serves: what the deployment library would log for chat, embedding and legacy use."""
    return (
        ServiceSpec("chat", "openai_chat", "chat", workers, queue),
        ServiceSpec("embed", "encode", "embed", workers, queue),
        ServiceSpec("textgen", "text_generation", "chat", workers, queue),
        ServiceSpec("textgen_legacy", "text_generation", "chat", workers, queue, legacy_json_output=True),
        ServiceSpec("embed_predict", "custom_predict", "embed", workers, queue),
        *(ServiceSpec(f"chat_{family}", "openai_chat", "chat", workers, queue, template_family=family)
          for family in TEMPLATE_SERVICE_FAMILIES),
        ServiceSpec("chat_vllm", "openai_chat", "chat", workers, queue, engine="vllm"),
        ServiceSpec("chat_lora", "openai_chat", "chat", workers, queue, engine="vllm", lora=True),
    )


@dataclass(frozen=True)
class StandinSettings:
    """Everything the stand-in needs at start-up. ``admin_secret`` guards the ``/__local__`` control routes."""

    account: str = "LOCALTEST"
    user: str = "LOCAL_USER"
    role: str = "SPCS_LLM_USER"  # the caller role the setup SQL and the presets name
    extra_user_roles: tuple[str, ...] = ("PUBLIC",)
    oauth_client_id: str = "local-dss-client"
    oauth_client_secret: str = field(default="local-dss-secret", repr=False)
    oauth_redirect_uri: str = "http://127.0.0.1:11200/dip/api/oauth2-callback"
    oauth_public_client: bool = False  # OAUTH_CLIENT_TYPE = 'PUBLIC': client_id in the body, PKCE required
    lifetimes: TokenLifetimes = TokenLifetimes()
    services: tuple[ServiceSpec, ...] = default_services()
    preload: tuple[ModelName, ...] = ()
    host: str = "127.0.0.1"
    account_port: int = 0
    admin_secret: str = field(default="", repr=False)
    seed: int = 0
    # More LoRA adapters for the chat_lora service, (alias, folder): what create_service(adapters=...) attaches.
    adapters: tuple[tuple[str, str], ...] = ()

    @property
    def user_roles(self) -> frozenset[str]:
        return frozenset({self.role.upper(), *(r.upper() for r in self.extra_user_roles)})

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise ConfigurationError(
            f"The stand-in has no service named {name!r}.",
            fix=f"Use one of: {', '.join(s.name for s in self.services)}.",
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``python -m spcs_standin`` and ``spcs-llm local``."""
    defaults = StandinSettings()
    life = TokenLifetimes()
    parser.add_argument("--account", default=defaults.account, help="account locator used in JWT iss/sub")
    parser.add_argument("--user", default=defaults.user, help="the local user OAuth auto-approves")
    parser.add_argument("--role", default=defaults.role, help="the user's role, granted on every service")
    parser.add_argument("--oauth-client-id", default=defaults.oauth_client_id)
    parser.add_argument("--oauth-client-secret", default=defaults.oauth_client_secret)
    parser.add_argument("--oauth-redirect-uri", default=defaults.oauth_redirect_uri)
    parser.add_argument("--oauth-public-client", action="store_true", help="OAUTH_CLIENT_TYPE=PUBLIC (PKCE, no secret)")
    parser.add_argument("--account-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=1, help="inference threads per service (emulated instances)")
    parser.add_argument("--service-workers", default="", help="per-service override, e.g. chat=2,embed=4")
    parser.add_argument("--queue", type=int, default=2, help="queued requests per service before 429")
    parser.add_argument("--preload", default="", help="comma list of models to load at start: chat,embed")
    parser.add_argument("--cold-start", type=float, default=0.0, metavar="SECONDS",
                        help="every service answers 503 for this long after start-up")
    parser.add_argument("--resume-phases", default="", metavar="PHASES",
                        help="start every service suspended; its first request begins a resume through these "
                             "phases, e.g. 503:30,502:20,refuse:5 (answer:seconds)")
    parser.add_argument("--adapter", action="append", default=[], metavar="ALIAS=FOLDER",
                        help="also serve this LoRA adapter of the tiny chat model on chat_lora (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault-injection randomness")
    for name in _TTL_FLAGS:
        parser.add_argument(f"--ttl-{name.replace('_', '-')}", type=int, default=getattr(life, name), metavar="SECONDS")


def settings_from_args(args: argparse.Namespace) -> StandinSettings:
    """Validated settings from parsed flags; the admin secret comes from the environment, never from argv."""
    preload = tuple(p.strip() for p in args.preload.split(",") if p.strip())
    unknown = [p for p in preload if p not in ("chat", "embed")]
    if unknown:
        raise ConfigurationError(f"Unknown model(s) to preload: {unknown}.",
                                 fix="Use --preload chat,embed or a subset.")
    if args.workers < 1 or args.queue < 0:
        raise ConfigurationError("Workers must be ≥ 1 and queue ≥ 0.", fix="Pass e.g. --workers 2 --queue 2.")
    if args.cold_start < 0:
        raise ConfigurationError("--cold-start cannot be negative.", fix="Pass 0 (no cold start) or more seconds.")
    overrides = _per_service(args.service_workers)
    phases = parse_resume_phases(args.resume_phases)
    services = tuple(replace(spec, workers=overrides.get(spec.name, spec.workers), cold_start_s=args.cold_start,
                             resume_phases=phases)
                     for spec in default_services(args.workers, args.queue))
    lifetimes = replace(TokenLifetimes(), **{name: getattr(args, f"ttl_{name}") for name in _TTL_FLAGS})
    return StandinSettings(
        account=args.account.upper(),
        user=args.user.upper(),
        role=args.role.upper(),
        oauth_client_id=args.oauth_client_id,
        oauth_client_secret=args.oauth_client_secret,
        oauth_redirect_uri=args.oauth_redirect_uri,
        oauth_public_client=args.oauth_public_client,
        lifetimes=lifetimes,
        services=services,
        preload=preload,  # type: ignore[arg-type]
        account_port=args.account_port,
        admin_secret=os.environ.get(ADMIN_SECRET_ENV, ""),
        seed=args.seed,
        adapters=parse_adapters(args.adapter),
    )


def _per_service(text: str) -> dict[str, int]:
    known = {spec.name for spec in default_services()}
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition("=")
        if name not in known or not count.isdigit() or int(count) < 1:
            raise ConfigurationError(
                f"Bad --service-workers entry {item!r}.", fix=f"Write name=N with N ≥ 1 and name in {sorted(known)}."
            )
        out[name] = int(count)
    return out


def parse_adapters(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``["colors=/tmp/adapter", ...]`` → (alias, folder) pairs, each folder a saved PEFT adapter."""
    adapters: dict[str, str] = {}
    for item in items:
        alias, _, folder = item.partition("=")
        alias = alias.strip()
        if not alias or not folder:
            raise ConfigurationError(f"Bad --adapter {item!r}.", fix="Pass --adapter ALIAS=FOLDER.")
        if alias in adapters or alias == BUILT_IN_ADAPTER:
            raise ConfigurationError(f"Adapter alias {alias!r} is taken.",
                                     fix=f"Give each adapter its own alias, other than {BUILT_IN_ADAPTER}.")
        if not (Path(folder) / "adapter_config.json").is_file():
            raise ConfigurationError(f"{folder} has no adapter_config.json, so it is not a LoRA adapter.",
                                     fix="Pass the folder a fine-tuning run saved its adapter to.")
        adapters[alias] = folder
    return tuple(adapters.items())


def parse_resume_phases(text: str) -> tuple[ResumePhase, ...]:
    """``"503:30,502:20,refuse:5"`` → resume phases; an empty text means no suspension."""
    phases = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        answer, _, seconds = item.partition(":")
        try:
            phases.append(ResumePhase(int(answer) if answer.isdigit() else answer, float(seconds)))
        except ValueError:
            raise ConfigurationError(f"Bad --resume-phases entry {item!r}.",
                                     fix="Write answer:seconds with answer 503, 502 or refuse, e.g. 502:20.") from None
    return tuple(phases)
