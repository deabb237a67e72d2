"""``spcs-llm doctor`` against the stand-in: each check's success and failure, the settings it prints (with the
labels DSS shows), the CLI entry point end to end, and that no secret ever reaches its output."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from spcs_llm.cli import main
from spcs_llm.dss.labels import (
    CHAT_COMPONENT,
    EMBEDDING_COMPONENT,
    OAUTH_PRESET,
    SERVICE_PRESET,
    component_form,
    preset_form,
)
from spcs_standin.tinychat import CANNED_EXCHANGES

TOKEN_ENV = "DOCTOR_TEST_TOKEN"
SETTINGS_HEADER = "DSS connection settings"


class Doctor:
    """Runs ``spcs-llm doctor`` in-process with the secret in an environment variable, and checks the output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stack) -> None:
        self.capsys, self.monkeypatch, self.stack = capsys, monkeypatch, stack

    def __call__(self, endpoint: str, *args: str, secret: str | None = None) -> tuple[int, str]:
        if secret is not None:
            self.monkeypatch.setenv(TOKEN_ENV, secret)
        code = main(["doctor", "--endpoint", endpoint, "--token-env", TOKEN_ENV, "--timeout", "3", *args])
        out = self.capsys.readouterr()
        text = out.out + out.err
        if secret:
            assert secret not in text
        lines = text.splitlines()
        for index, line in enumerate(lines):  # every failed check names its fix
            if line.startswith("✗"):
                assert lines[index + 1].startswith("  Fix: ") and len(lines[index + 1]) > 12, line
        return code, text


@pytest.fixture()
def doctor(capsys, monkeypatch, clean_stack) -> Doctor:
    return Doctor(capsys, monkeypatch, clean_stack)


def printed_settings(text: str) -> dict[str, dict[str, str]]:
    """The printed settings block: {"model": {label: value}, "preset": {label: value}}, as DSS names them."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text[text.index(SETTINGS_HEADER):].splitlines()[1:]:
        if line.startswith("  Custom LLM connection → model of type '"):
            current = sections.setdefault("model", {})
        elif line.startswith("  Preset '"):
            current = sections.setdefault("preset", {})
        elif line.startswith("    ") and current is not None:
            label, _, value = line.strip().partition(": ")
            current[label] = value.strip()
        else:
            break
    return sections


def labelled(form_name: str, settings: dict[str, object]) -> dict[str, str]:
    """Internal settings as the DSS form of a model type or preset shows them."""
    form = component_form(form_name) if form_name.startswith("spcs-") else preset_form(form_name)
    return {form.label(name): form.shown(name, value) for name, value in settings.items()}


def failed_check(text: str) -> str:
    failed = [line for line in text.splitlines() if line.startswith("✗")]
    assert len(failed) == 1, text
    return failed[0]


# --- happy paths ------------------------------------------------------------------------------------------------


def test_chat_service_over_pat_prints_the_settings_to_paste(doctor, clean_stack):
    code, text = doctor(clean_stack.chat_url, "--auth", "pat", "--account-url", clean_stack.account_url,
                        "--role", "SPCS_LLM_USER", secret=clean_stack.issue_pat())
    assert code == 0 and "✗" not in text
    assert "✓ Protocol: speaks openai_chat on /__call__" in text
    assert printed_settings(text) == {
        "model": labelled(CHAT_COMPONENT, {"auth_type": "service", "endpoint": clean_stack.chat_url,
                                           "route": "__call__", "protocol": "openai_chat"}),
        "preset": labelled(SERVICE_PRESET, {"account_url": clean_stack.account_url, "role": "SPCS_LLM_USER",
                                            "service_auth": "pat", "pat_exchange": False}),
    }
    assert "Paste the PAT itself" in text


def test_printed_settings_use_the_labels_and_choices_dss_shows(doctor, clean_stack):
    code, text = doctor(clean_stack.chat_url, "--auth", "pat", "--account-url", clean_stack.account_url,
                        "--role", "SPCS_LLM_USER", secret=clean_stack.issue_pat())
    assert code == 0
    block = text[text.index(SETTINGS_HEADER):]
    chat_form = component_form(CHAT_COMPONENT)
    assert f"model of type '{chat_form.title}'" in block and f"Preset '{preset_form(SERVICE_PRESET).title}'" in block
    for name in ("endpoint", "route", "protocol", "auth_type", "account_url", "service_auth", "pat_exchange"):
        assert f"\n    {name}:" not in block, name  # internal parameter names never show
    assert chat_form.label("protocol") != "protocol" and f"{chat_form.label('protocol')}:" in block
    assert chat_form.shown("protocol", "openai_chat") in block  # the choice's label, not its value


@pytest.mark.parametrize("service", ["textgen", "textgen_legacy"])
def test_text_generation_services_are_detected_with_their_family(doctor, clean_stack, service):
    code, text = doctor(clean_stack.service_url(service), "--auth", "pat", "--model-family", "zephyr",
                        secret=clean_stack.issue_pat())
    assert code == 0, text
    assert printed_settings(text)["model"] == labelled(CHAT_COMPONENT, {
        "auth_type": "service", "endpoint": clean_stack.service_url(service), "route": "__call__",
        "protocol": "text_generation", "model_family": "zephyr"})


@pytest.mark.parametrize("family", ["llama2", "chatml", "falcon"])
def test_text_generation_gets_the_prompt_the_component_renders(doctor, clean_stack, family):
    """The probe goes through the chat component's own rendering: the tiny model answers a prompt it knows in
    every family's layout, and the echo and stop strings are cut as the component cuts them."""
    code, text = doctor(clean_stack.textgen_url, "--auth", "pat", "--model-family", family,
                        secret=clean_stack.issue_pat())
    assert code == 0, text
    assert f"✓ Real call: the reply {CANNED_EXCHANGES[0].answer!r}" in text


def test_text_generation_without_a_family_fails_with_the_components_error(doctor, clean_stack):
    code, text = doctor(clean_stack.textgen_url, "--auth", "pat", secret=clean_stack.issue_pat())
    assert code == 1
    assert failed_check(text).startswith("✗ Model family: This service takes a text prompt (legacy text generation)")
    assert "Set 'Model family' on the model" in text and "--model-family" in text
    assert SETTINGS_HEADER not in text and "Real call" not in text


@pytest.mark.parametrize(("service", "protocol"), [("embed", "encode"), ("embed_predict", "predict")])
def test_embedding_services_report_route_protocol_and_dimension(doctor, clean_stack, service, protocol):
    code, text = doctor(clean_stack.service_url(service), "--kind", "embed", "--auth", "pat",
                        secret=clean_stack.issue_pat())
    assert code == 0, text
    assert "a 384-dimension vector" in text
    assert f"model of type '{component_form(EMBEDDING_COMPONENT).title}'" in text
    assert printed_settings(text)["model"] == labelled(EMBEDDING_COMPONENT, {
        "auth_type": "service", "endpoint": clean_stack.service_url(service), "route": protocol, "protocol": protocol})


@pytest.mark.parametrize(("mode", "credential"), [("direct", "oauth-direct"), ("exchange", "oauth-session"),
                                                   ("auto", "oauth-direct")])
def test_oauth_modes_check_the_token_and_its_exchange(doctor, clean_stack, mode, credential):
    code, text = doctor(clean_stack.embed_url, "--kind", "embed", "--auth", "oauth", "--oauth-mode", mode,
                        "--account-url", clean_stack.account_url, "--account-identifier", "LOCALTEST",
                        secret=clean_stack.issue_oauth_token())
    assert code == 0, text
    assert f"✓ Token: oauth credential ready ({credential})" in text
    assert printed_settings(text)["preset"] == labelled(OAUTH_PRESET, {
        "account_url": clean_stack.account_url, "account_identifier": "LOCALTEST", "oauth_mode": mode})


def test_pat_exchange_and_key_pair(doctor, clean_stack, rsa_key_pem, tmp_path):
    code, text = doctor(clean_stack.embed_url, "--kind", "embed", "--auth", "pat-exchange", "--account-url",
                        clean_stack.account_url, "--account-identifier", "LOCALTEST", secret=clean_stack.issue_pat())
    assert code == 0 and "credential ready (pat-exchanged)" in text
    assert printed_settings(text)["preset"] == labelled(SERVICE_PRESET, {
        "account_url": clean_stack.account_url, "account_identifier": "LOCALTEST", "service_auth": "pat",
        "pat_exchange": True})

    private, public = rsa_key_pem()
    clean_stack.register_public_key("LOCAL_USER", public)
    key_file = tmp_path / "key.pem"
    key_file.write_text(private)
    code, text = doctor(clean_stack.embed_url, "--kind", "embed", "--auth", "keypair", "--user", "LOCAL_USER",
                        "--private-key-file", str(key_file), "--account-url", clean_stack.account_url,
                        "--account-identifier", "LOCALTEST")
    assert code == 0 and "credential ready (keypair-exchanged)" in text
    assert printed_settings(text)["preset"][preset_form(SERVICE_PRESET).label("user")] == "LOCAL_USER"
    assert "".join(private.splitlines()[1:-1])[:64] not in text


# --- each failure -----------------------------------------------------------------------------------------------


def test_unknown_host_fails_dns(doctor):
    code, text = doctor("http://no-such-ingress.invalid", "--auth", "pat", secret="unused-token-0123456789")
    assert code == 1 and failed_check(text).startswith("✗ DNS: no-such-ingress.invalid does not resolve")
    assert "SHOW ENDPOINTS IN SERVICE" in text


def test_closed_port_fails_connect(doctor):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, text = doctor(f"http://127.0.0.1:{port}", "--auth", "pat", secret="unused-token-0123456789")
    assert code == 1 and failed_check(text).startswith(f"✗ TCP/TLS: cannot connect to 127.0.0.1:{port}")


@pytest.fixture()
def plain_http_server() -> Iterator[str]:
    """A web server that is not an ingress: it answers 200 to anything, token or not."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_an_ingress_is_named(doctor, clean_stack, plain_http_server):
    code, text = doctor(clean_stack.account_url, "--auth", "pat", secret=clean_stack.issue_pat())
    assert code == 1
    assert "✗ Ingress: answered HTTP 404 to a call without any token, so it is not an SPCS ingress" in text
    code, text = doctor(plain_http_server, "--auth", "pat", secret=clean_stack.issue_pat())
    assert code == 1 and "✗ Ingress: answered HTTP 200" in text
    assert "public ingress host" in text


def test_a_bad_pat_fails_the_authenticated_call(doctor, clean_stack):
    code, text = doctor(clean_stack.chat_url, "--auth", "pat", secret="ver:1-hint:1-pat-not-issued-0123456789abcdef")
    assert code == 1 and failed_check(text).startswith("✗ Authenticated call:")
    assert "PROGRAMMATIC ACCESS TOKEN" in text


def test_a_bad_oauth_token_fails_its_exchange(doctor, clean_stack):
    code, text = doctor(clean_stack.chat_url, "--auth", "oauth", "--oauth-mode", "exchange", "--account-url",
                        clean_stack.account_url, secret="ver:1-hint:1-oauth_access-not-issued-0123456789")
    assert code == 1 and failed_check(text).startswith("✗ Token:")


def test_a_role_without_the_service_role_fails_with_the_grant_to_run(doctor, clean_stack):
    clean_stack.revoke_role("chat", "SPCS_LLM_USER")  # clean_stack grants it back after the test
    code, text = doctor(clean_stack.chat_url, "--auth", "pat", secret=clean_stack.issue_pat())
    assert code == 1 and failed_check(text).startswith("✗ Service role:")
    assert "GRANT SERVICE ROLE" in text


def test_wrong_kind_or_route_fails_the_protocol_check(doctor, clean_stack):
    code, text = doctor(clean_stack.chat_url, "--kind", "embed", "--auth", "pat", secret=clean_stack.issue_pat())
    assert code == 1 and failed_check(text).startswith("✗ Protocol: no known embedding protocol worked")
    assert "--kind chat" in text
    code, text = doctor(clean_stack.chat_url, "--route", "predict", "--auth", "pat", secret=clean_stack.issue_pat())
    assert code == 1 and "EndpointNotFoundError" in failed_check(text)


def test_an_unregistered_key_fails_the_token_check_with_its_fingerprint(doctor, clean_stack, rsa_key_pem, tmp_path):
    private, _ = rsa_key_pem()
    key_file = tmp_path / "key.pem"
    key_file.write_text(private)
    code, text = doctor(clean_stack.chat_url, "--auth", "keypair", "--user", "LOCAL_USER", "--private-key-file",
                        str(key_file), "--account-url", clean_stack.account_url, "--account-identifier", "LOCALTEST")
    assert code == 1 and failed_check(text).startswith("✗ Token:")
    assert "RSA_PUBLIC_KEY_FP = SHA256:" in text
    assert "".join(private.splitlines()[1:-1])[:64] not in text


def test_a_missing_token_variable_is_named(doctor, clean_stack, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    code, text = doctor(clean_stack.chat_url, "--auth", "pat")
    assert code == 1 and failed_check(text).startswith(f"✗ Credentials: The environment variable {TOKEN_ENV}")


# --- the installed entry point ----------------------------------------------------------------------------------


def test_cli_entry_point_end_to_end_in_a_subprocess(clean_stack):
    pat = clean_stack.issue_pat()
    python_lib = Path(__file__).resolve().parents[2] / "python-lib"
    env = {**os.environ, TOKEN_ENV: pat, "PYTHONPATH": str(python_lib)}
    done = subprocess.run(
        [sys.executable, "-m", "spcs_llm.cli", "-v", "doctor", "--endpoint", clean_stack.embed_url, "--kind", "embed",
         "--auth", "pat-exchange", "--token-env", TOKEN_ENV, "--account-url", clean_stack.account_url,
         "--account-identifier", "LOCALTEST"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    protocol = component_form(EMBEDDING_COMPONENT).label("protocol")
    assert printed_settings(done.stdout)["model"][protocol] == component_form(EMBEDDING_COMPONENT).shown("protocol",
                                                                                                       "encode")
    assert "DEBUG" in done.stderr  # -v logs the token exchange...
    assert pat not in done.stdout + done.stderr  # ...without the PAT


def test_a_service_still_resuming_after_the_cold_start_wait_is_named(doctor, clean_stack):
    clean_stack.suspend("chat", [(503, 30.0)])  # reset_faults (clean_stack) ends the suspension after the test
    code, text = doctor(clean_stack.chat_url, "--auth", "pat", "--cold-start-wait", "1", secret=clean_stack.issue_pat())
    assert code == 1 and "did not finish resuming within 1 s" in failed_check(text)
    assert "MIN_INSTANCES" in text
