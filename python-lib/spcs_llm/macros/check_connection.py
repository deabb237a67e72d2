"""Macro *Check an SPCS LLM endpoint*: ``spcs-llm doctor``'s checks (``spcs_llm.spcs.doctor``) against one SPCS model,
from DSS — DNS, TLS, the ingress, the token, the authenticated call, the protocol, one real call — each shown ✓ or ✗
with its fix, then the settings that worked. It needs no Snowflake session, only the plugin's code env.

Secrets (PAT, OAuth token, private key) come from PASSWORD parameters or a service-account preset; they are
registered for redaction before any check runs, and never written to the page.
"""

from __future__ import annotations

from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import register_secret
from spcs_llm.macros.page import Page, Params, Progress, esc, run_page
from spcs_llm.spcs.config import FAMILIES
from spcs_llm.spcs.doctor import DoctorInputs, Report, run_doctor, settings_block

AUTH_CHOICES = ("preset", "pat", "pat-exchange", "oauth", "keypair")
PARAMS = frozenset({
    "endpoint", "kind", "route", "model_family", "auth", "service_preset", "account_url", "account_identifier",
    "user", "role", "token", "private_key", "private_key_passphrase", "timeout", "cold_start_wait",
})
SECRET_PARAMS = ("token", "private_key", "private_key_passphrase")
PRESET_SECRETS = ("pat", "private_key", "private_key_passphrase")


def auth_from(params: Params) -> dict[str, Any]:
    """The auth part of a DSS model config, as ``cli/doctor.auth_from_args`` builds it from the command line."""
    for name in SECRET_PARAMS:
        register_secret(params.text(name) or None)
    auth = params.text("auth", "preset")
    if auth not in AUTH_CHOICES:
        raise ConfigurationError(f"Unknown authentication {auth!r}.", fix=f"Pick one of {', '.join(AUTH_CHOICES)}.")
    common = {"account_url": params.text("account_url") or None,
              "account_identifier": params.text("account_identifier") or None, "role": params.text("role") or None}
    if auth == "preset":
        # A PRESET parameter arrives resolved, as the LLM components receive theirs (inferred for macros).
        chosen = params.value("service_preset")
        if not isinstance(chosen, dict) or not chosen:
            raise ConfigurationError("No service-account preset chosen.",
                                     fix="Pick a 'Snowflake service account' preset, or another authentication.")
        for name in PRESET_SECRETS:
            register_secret(str(chosen.get(name) or "") or None)
        return {"auth_type": "service", "service_preset": {**chosen, **{k: v for k, v in common.items() if v}}}
    token = params.text("token")
    if auth == "oauth":
        if not token:
            raise ConfigurationError("OAuth authentication needs an access token.",
                                     fix="Paste an OAuth access token in 'Token'.")
        return {"auth_type": "oauth", "oauth_preset": {"snowflake_oauth": token, "oauth_mode": "auto", **common}}
    preset: dict[str, Any] = {"service_auth": "keypair" if auth == "keypair" else "pat", "user": params.text("user"),
                              "pat_exchange": auth == "pat-exchange", **common}
    if auth == "keypair":
        if not params.text("private_key"):
            raise ConfigurationError("Key-pair authentication needs the private key.",
                                     fix="Paste the PEM private key in 'Private key' (and enter the user).")
        preset["private_key"] = params.text("private_key")
        preset["private_key_passphrase"] = params.text("private_key_passphrase") or None
    elif not token:
        raise ConfigurationError("PAT authentication needs the PAT.", fix="Paste the PAT in 'Token'.")
    else:
        preset["pat"] = token
    return {"auth_type": "service", "service_preset": preset}


class CheckConnectionMacro:
    progress_target = (2, "NONE")

    def __init__(self, config: dict) -> None:
        self.params = Params(config, PARAMS)

    def run(self, progress: Progress) -> str:
        return run_page("Check an SPCS LLM endpoint", lambda page: self._check(page, progress))

    def _check(self, page: Page, progress: Progress) -> None:
        params = self.params
        endpoint = params.text("endpoint")
        if not endpoint:
            raise ConfigurationError("No endpoint given.", fix="Enter the service's ingress host (SHOW ENDPOINTS IN "
                                                              "SERVICE <service>, column ingress_url).")
        kind = "embed" if params.text("kind", "chat") == "embed" else "chat"
        family = params.text("model_family", "auto")
        if family not in FAMILIES:
            raise ConfigurationError(f"Unknown model family {family!r}.", fix=f"Pick one of {', '.join(FAMILIES)}.")
        try:
            auth = auth_from(params)
        except ConfigurationError as failure:  # like the CLI: missing credentials are a failed check
            report = Report(kind=kind)
            report.add("Credentials", False, failure.message, failure.fix)
        else:
            progress(1)
            report = run_doctor(DoctorInputs(
                endpoint=endpoint, kind=kind, auth=auth, route=params.text("route") or None, model_family=family,
                timeout=params.number("timeout", 10.0, minimum=1.0),
                cold_start_wait=params.number("cold_start_wait", 120.0, minimum=0.0)))
        render_report(page, report)
        progress(2)


def render_report(page: Page, report: Report) -> None:
    """One line per check, ✓ or ✗, the fix under a failure; then the settings that worked (never a secret)."""
    items = []
    for check in report.checks:
        mark, css = ("✓", "ok") if check.ok else ("✗", "fail")
        fix = f'<br><span class="fix">Fix: {esc(check.fix)}</span>' if not check.ok and check.fix else ""
        items.append(f'<li class="{css}">{mark} {esc(check.name)}: {esc(check.detail)}{fix}</li>')
    page.heading("All checks passed" if report.ok else "A check failed")
    page.markup(f"<ul>{''.join(items)}</ul>")
    if report.ok and report.settings:
        page.heading("DSS connection settings that worked")
        page.pre("\n".join(settings_block(report)))
    for note in report.notes:
        page.paragraph(f"Note: {note}")
