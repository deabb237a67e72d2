"""The stand-in's command line and client handle (no model work)."""

from __future__ import annotations

import argparse
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from spcs_llm.cli.local import register
from spcs_llm.core.errors import ConfigurationError
from spcs_standin.commands import dss_settings_text
from spcs_standin.credentials import pkce_s256
from spcs_standin.settings import settings_from_args
from spcs_standin.stack import LocalStack


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["local", *argv])


def test_cli_registers_local_with_its_settings():
    args = _parse("--service-workers", "embed=3", "--preload", "embed", "--ttl-session", "60", "--cold-start", "2")
    settings = settings_from_args(args)
    assert callable(args.handler)
    assert settings.service("embed").workers == 3 and settings.service("chat").workers == 1
    assert settings.service("chat").cold_start_s == 2.0
    assert settings.lifetimes.session == 60 and settings.preload == ("embed",)


@pytest.mark.parametrize("argv", [("--service-workers", "nope=2"), ("--preload", "gpt"), ("--workers", "0")])
def test_bad_settings_name_the_fix(argv):
    with pytest.raises(ConfigurationError, match="Fix:"):
        settings_from_args(_parse(*argv))


def test_dss_settings_text_lists_what_to_paste():
    settings = settings_from_args(_parse())
    line = ('{"event": "ready", "account_url": "http://127.0.0.1:1", "services": {"chat": "http://127.0.0.1:2"}, '
            '"pid": 3}')
    text = dss_settings_text(settings, line)
    assert text.splitlines()[0] == line
    assert "http://127.0.0.1:1/oauth/token-request" in text and "session:role:SPCS_LLM_USER" in text


def test_attach_needs_the_admin_secret(local_stack):
    ready = {"account_url": local_stack.account_url, "services": local_stack.services}
    with pytest.raises(ConfigurationError) as refused:
        LocalStack.attach(ready, "not-the-secret")
    assert "Missing or wrong X-Local-Admin-Secret" in refused.value.message
    attached = LocalStack.attach(ready, local_stack._admin_secret)
    assert attached.issue_pat().startswith("ver:1-")
    attached.stop()  # does not stop a process it did not start
    assert LocalStack.attach(ready, local_stack._admin_secret).account_url == local_stack.account_url


def test_public_client_pkce_and_configured_lifetimes():
    """A second, auth-only stand-in: starts without loading any model, with a PUBLIC OAuth client."""
    redirect = "http://127.0.0.1:11200/dip/api/oauth2-callback"
    with LocalStack.start(extra_args=("--oauth-public-client",), ttl={"oauth_access": 5, "session": 7},
                          startup_timeout=60) as stack:
        base = {"client_id": "local-dss-client", "redirect_uri": redirect, "response_type": "code",
                "scope": "session:role:SPCS_LLM_USER"}
        no_pkce = requests.get(f"{stack.account_url}/oauth/authorize", params=base, allow_redirects=False, timeout=10)
        assert "error=invalid_request" in no_pkce.headers["location"]
        verifier = "v" * 50
        granted = requests.get(f"{stack.account_url}/oauth/authorize", allow_redirects=False, timeout=10,
                               params={**base, "code_challenge": pkce_s256(verifier), "code_challenge_method": "S256"})
        code = parse_qs(urlparse(granted.headers["location"]).query)["code"][0]
        token = requests.post(f"{stack.account_url}/oauth/token-request", timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "code_verifier": verifier,
            "client_id": "local-dss-client"}).json()
        assert token["expires_in"] == 5 and "refresh_token" not in token
        login = requests.post(f"{stack.account_url}/session/v1/login-request", timeout=10, json={
            "data": {"AUTHENTICATOR": "OAUTH", "TOKEN": token["access_token"]}}).json()
        assert login["data"]["validityInSeconds"] == 7


def test_a_refused_control_request_carries_the_stand_ins_own_fix(local_stack):
    with pytest.raises(ConfigurationError) as unknown:
        local_stack.set_faults("gpt")
    assert "No service named 'gpt'" in unknown.value.message and "Use one of" in unknown.value.fix
    with pytest.raises(ConfigurationError) as bad_knob:
        local_stack.set_faults("chat", not_a_knob=1)
    assert "Unknown fault knob(s): ['not_a_knob']" in bad_knob.value.message and "latency_ms" in bad_knob.value.fix
    with pytest.raises(ConfigurationError) as bad_value:
        local_stack.set_cold_start("chat", "soon")
    assert "Bad control request: ValueError" in bad_value.value.message and "FaultKnobs" in bad_value.value.fix
    wrong_secret = LocalStack(local_stack.account_url, {}, "not-the-secret")
    with pytest.raises(ConfigurationError) as refused:
        wrong_secret.reset_faults()
    assert "X-Local-Admin-Secret" in refused.value.message and "ready line" in refused.value.fix
