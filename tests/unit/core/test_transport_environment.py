"""Transport and the environment: a ``.netrc`` entry never replaces the credential; proxies and CA bundles from the
environment are still honoured (read once per URL, ``transport.py``)."""

import pytest

from spcs_llm.core.auth import Credential
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.transport import Transport

BASE = "https://abc-org-acct.snowflakecomputing.app"
URL = f"{BASE}/__call__"
HOST = "abc-org-acct.snowflakecomputing.app"
TOKEN = "fake-token-CCCC3333"
ENV_NAMES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
             "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC")


class OneToken:
    identity = "fake-identity"

    def __init__(self, credential: Credential) -> None:
        self.current = credential

    def credential(self) -> Credential:
        return self.current

    def renew(self, rejected: Credential) -> Credential:
        return self.current


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """No proxy, CA bundle or netrc settings from the developer's environment; HOME is an empty folder."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def transport_with(credential: Credential) -> Transport:
    config = EndpointConfig(base_url=BASE, route="__call__")
    return Transport(config, OneToken(credential), sleep=lambda s: None)


def recorded_sends(monkeypatch, transport: Transport) -> list[dict]:
    real_send, seen = transport.state.session.send, []

    def send(prepared, **kwargs):
        seen.append(kwargs)
        return real_send(prepared, **kwargs)

    monkeypatch.setattr(transport.state.session, "send", send)
    return seen


def write_netrc(home) -> None:
    netrc = home / ".netrc"
    netrc.write_text(f"machine {HOST}\n  login someone\n  password netrc-password-DDDD4444\n")
    netrc.chmod(0o600)


@pytest.mark.parametrize("credential, expected", [
    (Credential(TOKEN, expires_at=float("inf")), f'Snowflake Token="{TOKEN}"'),
    (Credential(TOKEN, expires_at=float("inf"), bearer_token_type="PROGRAMMATIC_ACCESS_TOKEN"), f"Bearer {TOKEN}"),
], ids=["spcs", "bearer"])
def test_a_netrc_entry_for_the_host_does_not_replace_the_credential(clean_environment, mocked, credential, expected):
    # requests applies Basic auth from ~/.netrc in Session.prepare_request when the session trusts the environment
    # (https://requests.readthedocs.io/en/latest/user/authentication/#netrc-authentication), over our header.
    write_netrc(clean_environment)
    mocked.post(URL, json={"data": []})
    transport_with(credential).post_json("__call__", {"data": []})
    assert mocked.calls[0].request.headers["Authorization"] == expected


def test_a_proxy_named_in_no_proxy_is_not_used(clean_environment, monkeypatch, mocked):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", ".snowflakecomputing.app")
    transport = transport_with(Credential(TOKEN, expires_at=float("inf")))
    seen = recorded_sends(monkeypatch, transport)
    mocked.post(URL, json={"data": []})
    transport.post_json("__call__", {})
    assert seen[0]["proxies"].get("https") is None


@pytest.mark.parametrize("name", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_from_the_environment_is_used_to_verify(clean_environment, monkeypatch, mocked, name):
    bundle = clean_environment / "corporate-ca.pem"
    monkeypatch.setenv(name, str(bundle))
    transport = transport_with(Credential(TOKEN, expires_at=float("inf")))
    seen = recorded_sends(monkeypatch, transport)
    mocked.post(URL, json={"data": []})
    transport.post_json("__call__", {})
    assert seen[0]["verify"] == str(bundle)


def test_without_a_ca_bundle_the_default_store_verifies(clean_environment, monkeypatch, mocked):
    transport = transport_with(Credential(TOKEN, expires_at=float("inf")))
    seen = recorded_sends(monkeypatch, transport)
    mocked.post(URL, json={"data": []})
    transport.post_json("__call__", {})
    assert seen[0]["verify"] is True and seen[0]["proxies"] == {}
