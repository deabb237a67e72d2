"""Account calls (OAuth, key-pair exchange) keep the Authorization header they set, even when ``~/.netrc`` has an
entry for the account host: ``requests`` would otherwise replace it with Basic auth."""

import responses

from spcs_llm.core.auth.account import AccountClient

ACCOUNT = "https://org-acct.snowflakecomputing.com"


def test_a_netrc_entry_for_the_account_host_does_not_replace_the_authorization_header(monkeypatch, tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine org-acct.snowflakecomputing.com\n  login someone\n  password netrc-password-EEEE5555\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    with responses.RequestsMock() as http:
        http.post(f"{ACCOUNT}/oauth/token-request", json={"access_token": "x"})
        AccountClient(ACCOUNT).post("/oauth/token-request", purpose="a token", form={"grant_type": "x"},
                                    headers={"Authorization": "Bearer account-token-FFFF6666"})
        assert http.calls[0].request.headers["Authorization"] == "Bearer account-token-FFFF6666"
