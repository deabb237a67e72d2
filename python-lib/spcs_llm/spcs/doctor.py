"""The SPCS checks behind ``spcs-llm doctor``: check a DSS → SPCS setup step by step, name the fix for the first
failure, and give the connection settings to paste into DSS.

The checks run in the order a request travels: DNS, TCP/TLS, the ingress's answer to an anonymous call, the
token (and its exchange), the authenticated call, which route and row shape the service speaks, one real call.
The token and the calls go through the components' own auth, transport and model clients: a chat call renders
the prompt exactly as the chat component would (and fails a text-generation service without a model family with
the component's own error), so what passes here passes in DSS. The settings that worked are given with the
labels DSS shows, and never with a secret.

This module is the library part (``run_doctor`` → ``Report``, ``format_report``), usable from a DSS macro; the
command line (its options, reading secrets from environment variables or files, printing) is
``spcs_llm.cli.doctor``.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlparse

import requests

from spcs_llm.core.auth import token_source_for
from spcs_llm.core.config import AuthConfig, normalise_url
from spcs_llm.core.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    CredentialMissingError,
    EndpointNotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    SpcsLlmError,
)
from spcs_llm.core.redaction import redact
from spcs_llm.dss.generation import GenerationParams
from spcs_llm.dss.labels import (
    CHAT_COMPONENT,
    EMBEDDING_COMPONENT,
    OAUTH_PRESET,
    SERVICE_PRESET,
    component_form,
    preset_form,
)
from spcs_llm.spcs.chat import ChatClient
from spcs_llm.spcs.config import parse_chat_config, parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingClient
from spcs_llm.spcs.templates import family_for_model

PROBE_TEXT = "Hello from spcs-llm doctor."
PROBE_MESSAGES = ({"role": "user", "content": PROBE_TEXT},)
PROBE_PARAMS = GenerationParams(max_tokens=16, temperature=0.0)
# A call refused with one of these means "not this route / row shape": the next route may fit.
SHAPE_MISMATCH = (RequestRejectedError, EndpointNotFoundError, BadResponseError)
CHAT_ROUTES = ("__call__", "predict")  # current services, then the legacy deploy path's single /predict
EMBEDDING_PROTOCOLS = ("encode", "predict")  # each protocol's route has its name


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Report:
    """The checks in order; once the real call passed, the settings that made it work (model, then preset)."""

    checks: list[Check] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kind: str = "chat"

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str, fix: str = "") -> bool:
        self.checks.append(Check(name, ok, redact(detail), redact(fix)))
        return ok


@dataclass(frozen=True)
class DoctorInputs:
    """What to check. ``auth`` is the auth part of a DSS model config (``auth_type`` plus the resolved preset)."""

    endpoint: str
    kind: str  # "chat" | "embed"
    auth: dict[str, Any]
    route: str | None = None
    model_family: str = "auto"
    timeout: float = 10.0
    cold_start_wait: float = 120.0  # a check should not sit through a whole GPU resume unless asked to


def _dss_config(inputs: DoctorInputs) -> dict[str, Any]:
    """The model settings the doctor checks, as DSS would hand them to the component."""
    config: dict[str, Any] = {"endpoint": inputs.endpoint, "max_attempts": 2, "max_retry_seconds": 5,
                              "cold_start_timeout": inputs.cold_start_wait, "connect_timeout": inputs.timeout,
                              **inputs.auth}
    if inputs.kind == "chat":
        config["model_family"] = inputs.model_family
    if inputs.route:
        config["route"] = inputs.route
    return config


def check_network(report: Report, base_url: str, timeout: float) -> bool:
    parsed = urlparse(base_url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, UnicodeError) as failure:
        return report.add("DNS", False, f"{host} does not resolve ({getattr(failure, 'strerror', None) or failure}).",
                          "Copy the host from SHOW ENDPOINTS IN SERVICE <service> (column ingress_url); the service "
                          "may still be PENDING (no URL yet).")
    report.add("DNS", True, f"{host} → {address}")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if parsed.scheme == "https":
                with ssl.create_default_context().wrap_socket(sock, server_hostname=host) as tls:
                    return report.add("TCP/TLS", True, f"connected, {tls.version()}")
            return report.add("TCP/TLS", True, f"connected to {host}:{port} (plain HTTP: a local stand-in only)")
    except ssl.SSLError as failure:
        return report.add("TCP/TLS", False, f"TLS handshake with {host} failed: {failure.reason}.",
                          "A proxy re-signs TLS: point REQUESTS_CA_BUNDLE at its CA certificate.")
    except OSError as failure:
        return report.add("TCP/TLS", False, f"cannot connect to {host}:{port}: {failure}.",
                          "Allow outbound HTTPS from DSS to *.snowflakecomputing.app (proxy / firewall), and check "
                          "the endpoint's port.")


def check_unauthenticated_answer(report: Report, url: str, timeout: float) -> bool:
    """An SPCS ingress refuses a request without a token with a login redirect or a 401.

    The 401 is what Snowflake-Labs spcs-templates ``token_demo.py`` shows; the redirect is inferred.
    """
    try:
        answer = requests.post(url, json={"data": []}, allow_redirects=False, timeout=timeout)
    except requests.RequestException as failure:
        return report.add("Ingress", False, f"no answer from {url}: {type(failure).__name__}.",
                          "Check the endpoint URL and that the service is running (SHOW SERVICES).")
    if answer.status_code in (301, 302, 303, 307, 308, 401):
        return report.add("Ingress", True, f"refuses anonymous calls ({answer.status_code}), as an SPCS ingress does")
    return report.add("Ingress", False,
                      f"answered HTTP {answer.status_code} to a call without any token, so it is not an SPCS ingress.",
                      "Use the service's public ingress host from SHOW ENDPOINTS IN SERVICE <service> (the endpoint "
                      "needs public: true), not the account URL or another server.")


@dataclass(frozen=True)
class Attempt:
    """One way of calling the service that the components support: the settings to try and what came back."""

    settings: dict[str, str]
    route: str
    protocol: str
    detail: str
    renewals: int


def _chat_attempt(client: ChatClient) -> Attempt:
    """One completion through the chat component's own client: its protocol detection, its prompt rendering for
    text-generation services (or its refusal when no model family is set), its reading of the reply."""
    result = client.complete(list(PROBE_MESSAGES), PROBE_PARAMS)
    route = client.config.endpoint.route
    settings = {"route": route, "protocol": result.protocol}
    if result.protocol == "text_generation":
        family = client.config.family
        settings["model_family"] = family if family != "auto" else family_for_model(client.config.endpoint.url)
    return Attempt(settings, route, result.protocol, f"the reply {result.text[:60]!r}", result.renewals)


def _embedding_attempt(client: EmbeddingClient) -> Attempt:
    """One text through the embedding component's own client (its envelope, batching and row reading)."""
    result = client.embed([PROBE_TEXT])
    (row,) = result.rows
    if row.error is not None or row.vector is None:
        raise BadResponseError(row.error or "The service returned no embedding.")
    protocol = client.config.protocol
    return Attempt({"route": protocol, "protocol": protocol}, protocol, protocol,
                   f"a {len(row.vector)}-dimension vector", result.renewals)


def _attempts(inputs: DoctorInputs) -> list[Callable[[], Attempt]]:
    """A client per way to try, most modern first; only the given route when there is one. Each is configured as
    DSS would configure the component with that protocol and route (its defaults follow the protocol)."""
    settings = _dss_config(inputs)
    wanted = inputs.route.strip("/") if inputs.route else None
    if inputs.kind == "embed":
        return [partial(_embedding_attempt, EmbeddingClient(parse_embedding_config(
            {**settings, "protocol": protocol, "route": protocol}))) for protocol in EMBEDDING_PROTOCOLS
            if wanted in (None, protocol)]
    return [partial(_chat_attempt, ChatClient(parse_chat_config({**settings, "route": route})))
            for route in CHAT_ROUTES if wanted in (None, route)]


def check_service(report: Report, inputs: DoctorInputs) -> bool:
    """Token, authenticated call, protocol detection and one real call, through the components' own clients."""
    parse = parse_embedding_config if inputs.kind == "embed" else parse_chat_config
    try:
        config = parse(_dss_config(inputs))
        tokens = token_source_for(config.auth, config.endpoint.host)
        credential = tokens.credential()
        attempts = _attempts(inputs)
    except SpcsLlmError as failure:
        return report.add("Token", False, failure.message, failure.fix)
    report.add("Token", True, f"{config.auth.kind} credential ready ({credential.kind})")
    refusals: list[SpcsLlmError] = []
    for attempt in attempts:
        started = time.perf_counter()
        try:
            done = attempt()
        except (AuthenticationError, CredentialMissingError) as failure:
            return report.add("Authenticated call", False, failure.message, failure.fix)
        except PermissionDeniedError as failure:
            return report.add("Service role", False, failure.message, failure.fix)
        except ConfigurationError as failure:
            # The chat component's own refusal: a text-generation service and no model family to format the chat.
            return report.add("Model family", False, failure.message,
                              f"{failure.fix} Then re-run the doctor with --model-family <family>.")
        except SHAPE_MISMATCH as failure:
            refusals.append(failure)
            continue
        except SpcsLlmError as failure:
            return report.add("Real call", False, failure.message, failure.fix)
        elapsed_ms = (time.perf_counter() - started) * 1000
        renewed = f", after renewing it ({tokens.credential().kind})" if done.renewals else ""
        report.add("Authenticated call", True, f"POST /{done.route} accepted the token{renewed}")
        report.add("Protocol", True, f"speaks {done.protocol} on /{done.route}")
        report.add("Real call", True, f"{done.detail} in {elapsed_ms:.0f} ms")
        _record_settings(report, inputs, config, done)
        return True
    if not attempts:
        return report.add("Protocol", False, f"no known {inputs.kind} protocol uses the route {inputs.route!r}.",
                          "Use --route __call__ or predict for chat, encode or predict for embeddings.")
    tried = "; ".join(f"{type(f).__name__}: {f.message}" for f in refusals)
    other_kind = "embed" if inputs.kind == "chat" else "chat"
    kind_name, a_model = ("embedding", "an embedding model") if inputs.kind == "embed" else ("chat", "a chat model")
    return report.add("Protocol", False, f"no known {kind_name} protocol worked ({tried}).",
                      f"{refusals[-1].fix} If this service is not {a_model}, run the doctor with --kind {other_kind}.")


def _record_settings(report: Report, inputs: DoctorInputs, config: Any, done: Attempt) -> None:
    """The DSS settings that made the real call work: the model's, then its preset's (without secrets)."""
    report.settings = {"model": {"auth_type": inputs.auth.get("auth_type", "oauth"),
                                 "endpoint": config.endpoint.base_url, **done.settings},
                       "preset": _preset_settings(config.auth)}
    if config.auth.kind == "pat":
        report.notes.append("Paste the PAT itself into the preset's 'PAT' field (not shown here).")
    elif config.auth.kind == "keypair":
        report.notes.append("Paste the private key (and its passphrase, if any) into the preset (not shown here).")


def _preset_settings(auth: AuthConfig) -> dict[str, Any]:
    preset: dict[str, Any] = {"account_url": auth.account_url, "account_identifier": auth.account_identifier,
                              "role": auth.role}
    if auth.kind == "oauth":
        preset["oauth_mode"] = auth.oauth_mode
    else:
        preset.update(service_auth=auth.kind, user=auth.user)
        if auth.kind == "pat":
            preset["pat_exchange"] = auth.pat_exchange
    return {key: value for key, value in preset.items() if value not in (None, "")}


def settings_block(report: Report) -> list[str]:
    """The model's and the preset's settings, each under its DSS form and labelled as DSS shows them."""
    model = component_form(EMBEDDING_COMPONENT if report.kind == "embed" else CHAT_COMPONENT)
    preset = preset_form(OAUTH_PRESET if report.settings["model"].get("auth_type") == "oauth" else SERVICE_PRESET)
    return [f"  Custom LLM connection → model of type '{model.title}':", *model.lines(report.settings["model"]),
            f"  Preset '{preset.title}':", *preset.lines(report.settings["preset"])]


def run_doctor(inputs: DoctorInputs) -> Report:
    """Every check in order, stopping at the first failure: a failed step makes the later ones meaningless."""
    report = Report(kind=inputs.kind)
    try:
        base_url = normalise_url(inputs.endpoint, what="endpoint")
    except SpcsLlmError as failure:
        report.add("Endpoint", False, failure.message, "Pass the ingress host, e.g. --endpoint abc-org-acct."
                   "snowflakecomputing.app")
        return report
    parsed = urlparse(base_url)
    base = f"{parsed.scheme}://{parsed.netloc}"
    if check_network(report, base, inputs.timeout):
        route = (inputs.route or ("encode" if inputs.kind == "embed" else "__call__")).strip("/")
        if check_unauthenticated_answer(report, f"{base}/{route}", inputs.timeout):
            check_service(report, inputs)
    return report


def format_report(report: Report) -> str:
    """The report as the CLI prints it: one line per check (✓/✗), the fix under a failure, then the settings."""
    lines = []
    for check in report.checks:
        lines.append(f"{'✓' if check.ok else '✗'} {check.name}: {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"  Fix: {check.fix}")
    if report.ok and report.settings:
        lines.append("\nDSS connection settings that worked:")
        lines.extend(settings_block(report))
    lines.extend(f"Note: {note}" for note in report.notes)
    return redact("\n".join(lines))
