"""The stand-in's account and ingress authentication, driven with plain ``requests``.

Shapes follow snowflake-connector-python (login-request), snowflake-ml ``utils/authentication.py`` (key-pair
JWT, PAT) and Snowflake-Labs spcs-templates ``spcs-ingress-auth`` (Snowflake OAuth).
"""

from __future__ import annotations

import base64
import secrets
import time
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from spcs_standin.credentials import pkce_s256, public_key_fingerprint

CLIENT_ID, CLIENT_SECRET = "local-dss-client", "local-dss-secret"
REDIRECT_URI = "http://127.0.0.1:11200/dip/api/oauth2-callback"
CHAT_BODY = {"data": [[0, {"messages": [{"role": "user", "content": "Hi there"}], "temperature": 0.0,
                           "max_completion_tokens": 4}]]}


def _basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()}


def _authorize(stack, *, scope="refresh_token session:role:SPCS_LLM_USER", challenge=None, **overrides):
    params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": scope,
              "state": "st-42"}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(overrides)
    return requests.get(f"{stack.account_url}/oauth/authorize", params=params, allow_redirects=False, timeout=10)


def _redirect_params(response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def test_oauth_authorization_code_with_pkce_then_refresh(local_stack, snowflake_auth):
    verifier = secrets.token_urlsafe(48)
    params = _redirect_params(_authorize(local_stack, challenge=pkce_s256(verifier)))
    assert params["state"] == "st-42"

    token = requests.post(f"{local_stack.account_url}/oauth/token-request", headers=_basic(), timeout=10, data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier}).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 600 and token["username"] == "LOCAL_USER"
    assert token["refresh_token_expires_in"] == 7_776_000 and "session:role:SPCS_LLM_USER" in token["scope"]

    ok = requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY, timeout=30,
                       headers=snowflake_auth(token["access_token"], oauth=True))
    assert ok.status_code == 200

    refreshed = requests.post(f"{local_stack.account_url}/oauth/token-request", headers=_basic(), timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] not in (token["access_token"], token["refresh_token"])


def test_oauth_code_is_single_use_and_pkce_is_checked(local_stack):
    verifier = secrets.token_urlsafe(48)
    code = _redirect_params(_authorize(local_stack, challenge=pkce_s256(verifier)))["code"]
    url = f"{local_stack.account_url}/oauth/token-request"
    wrong = requests.post(url, headers=_basic(), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": "nope" * 12})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    reused = requests.post(url, headers=_basic(), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_oauth_client_and_request_validation(local_stack):
    bad_client = requests.post(f"{local_stack.account_url}/oauth/token-request", timeout=10,
                               headers={"Authorization": "Basic " + base64.b64encode(b"local-dss-client:x").decode()},
                               data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    assert _authorize(local_stack, redirect_uri="http://evil.example/cb").status_code == 400
    assert _authorize(local_stack, client_id="someone-else").status_code == 400
    assert _redirect_params(_authorize(local_stack, response_type="token"))["error"] == "unsupported_response_type"
    assert _redirect_params(_authorize(local_stack, scope="session:role:ACCOUNTADMIN"))["error"] == "invalid_scope"


def _login(stack, token: str) -> dict:
    body = {"data": {"CLIENT_APP_ID": "spcs-llm", "ACCOUNT_NAME": "LOCALTEST", "LOGIN_NAME": "LOCAL_USER",
                     "AUTHENTICATOR": "OAUTH", "TOKEN": token}}
    response = requests.post(f"{stack.account_url}/session/v1/login-request", json=body, timeout=10,
                             params={"request_id": "0"})
    assert response.status_code == 200  # snowflake-connector network.py: failures are HTTP 200 too
    return response.json()


def test_login_request_session_and_renew(local_stack, snowflake_auth):
    login = _login(local_stack, local_stack.issue_oauth_token())
    assert login["success"] is True
    data = login["data"]
    assert data["validityInSeconds"] == 3600 and data["masterValidityInSeconds"] == 14_400
    session = snowflake_auth(data["token"])
    assert requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY, headers=session,
                         timeout=30).status_code == 200

    renewal = {"oldSessionToken": data["token"], "requestType": "RENEW"}
    # the connector's spelling is requestId (network.py); request_id, the login-request's, is refused here
    assert requests.post(f"{local_stack.account_url}/session/token-request", timeout=10, params={"request_id": "0"},
                         headers=snowflake_auth(data["masterToken"]), json=renewal).status_code == 400
    renew = requests.post(f"{local_stack.account_url}/session/token-request", timeout=10,
                          params={"requestId": "0"}, headers=snowflake_auth(data["masterToken"]), json=renewal).json()
    assert renew["success"] is True and renew["data"]["validityInSecondsST"] == 3600
    renewed = snowflake_auth(renew["data"]["sessionToken"])
    chat = f"{local_stack.chat_url}/__call__"
    assert requests.post(chat, json=CHAT_BODY, headers=renewed, timeout=30).status_code == 200
    assert requests.post(chat, json=CHAT_BODY, headers=session, timeout=30).status_code == 401


def test_login_request_failure_codes(local_stack):
    invalid = _login(local_stack, "not-a-token")
    assert invalid["success"] is False and invalid["code"] == "390303"
    expired = _login(local_stack, local_stack.issue_oauth_token(ttl=0.001))
    assert expired["success"] is False and expired["code"] == "390318"


def _keypair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def _keypair_jwt(key, user="LOCAL_USER", fingerprint=None, lifetime=3540):
    now = int(time.time())
    fingerprint = fingerprint or public_key_fingerprint(key.public_key())
    claims = {"iss": f"LOCALTEST.{user}.{fingerprint}", "sub": f"LOCALTEST.{user}", "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, key, algorithm="RS256")


def test_keypair_jwt_exchange_gives_a_jwt_shaped_ingress_token(local_stack, snowflake_auth):
    key, pem = _keypair()
    assert local_stack.register_public_key("LOCAL_USER", pem) == public_key_fingerprint(key.public_key())
    host = urlparse(local_stack.chat_url).netloc
    response = requests.post(f"{local_stack.account_url}/oauth/token", timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "scope": f"session:role:SPCS_LLM_USER {host}",
        "assertion": _keypair_jwt(key)})
    assert response.status_code == 200 and not response.headers["content-type"].startswith("application/json")
    claims = jwt.decode(response.text, options={"verify_signature": False})
    assert 3500 <= claims["exp"] - time.time() <= 3600
    ok = requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY, headers=snowflake_auth(response.text),
                       timeout=30)
    assert ok.status_code == 200


@pytest.mark.parametrize("problem", ["unknown_key", "too_long", "bad_subject"])
def test_keypair_jwt_is_verified(local_stack, problem):
    key, pem = _keypair()
    local_stack.register_public_key("LOCAL_USER", pem)
    if problem == "unknown_key":
        assertion = _keypair_jwt(_keypair()[0], fingerprint=public_key_fingerprint(_keypair()[0].public_key()))
    elif problem == "too_long":
        assertion = _keypair_jwt(key, lifetime=24 * 3600)
    else:
        now = int(time.time())
        assertion = jwt.encode({"iss": f"LOCALTEST.LOCAL_USER.{public_key_fingerprint(key.public_key())}",
                                "sub": "LOCALTEST.SOMEONE", "iat": now, "exp": now + 60}, key, algorithm="RS256")
    response = requests.post(f"{local_stack.account_url}/oauth/token", timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_pat_direct_and_exchanged(local_stack, snowflake_auth):
    pat = local_stack.issue_pat()
    direct = requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY, headers=snowflake_auth(pat), timeout=30)
    assert direct.status_code == 200
    exchanged = requests.post(f"{local_stack.account_url}/oauth/token", timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": pat,
        "subject_token_type": "programmatic_access_token", "scope": "session:role:SPCS_LLM_USER 127.0.0.1"})
    assert exchanged.status_code == 200
    assert jwt.decode(exchanged.text, options={"verify_signature": False})["exp"] > time.time()
    via_exchange = requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY, timeout=30,
                                 headers=snowflake_auth(exchanged.text))
    assert via_exchange.status_code == 200
    restricted = requests.post(f"{local_stack.account_url}/oauth/token", timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": pat,
        "subject_token_type": "programmatic_access_token", "scope": "session:role:PUBLIC"})
    assert restricted.status_code == 400 and restricted.json()["error"] == "invalid_scope"


def test_missing_token_redirects_to_an_html_login_page(local_stack):
    response = requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    page = requests.get(response.headers["location"], timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()


@pytest.mark.parametrize("case", ["garbage", "expired", "oauth_without_header", "bearer_scheme", "master_token"])
def test_bad_or_expired_token_is_401_login_again(local_stack, snowflake_auth, case):
    if case == "garbage":
        headers = snowflake_auth("garbage-token")
    elif case == "expired":
        headers = snowflake_auth(local_stack.issue_pat(ttl=0.001))
    elif case == "oauth_without_header":
        headers = snowflake_auth(local_stack.issue_oauth_token())
    elif case == "bearer_scheme":
        headers = {"Authorization": f"Bearer {local_stack.issue_pat()}"}
    else:
        headers = snowflake_auth(_login(local_stack, local_stack.issue_oauth_token())["data"]["masterToken"])
    response = requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY, headers=headers, timeout=10,
                             allow_redirects=False)
    assert response.status_code == 401
    assert response.json()["code"] == "390104"


def test_role_without_the_service_role_is_403(clean_stack, snowflake_auth):
    public = snowflake_auth(clean_stack.issue_pat(role="PUBLIC"))
    chat = f"{clean_stack.chat_url}/__call__"
    assert requests.post(chat, json=CHAT_BODY, headers=public, timeout=10).status_code == 403
    clean_stack.grant_role("chat", "PUBLIC")
    assert requests.post(chat, json=CHAT_BODY, headers=public, timeout=30).status_code == 200
    caller = snowflake_auth(clean_stack.issue_pat())
    clean_stack.revoke_role("chat", "SPCS_LLM_USER")
    assert requests.post(chat, json=CHAT_BODY, headers=caller, timeout=10).status_code == 403
    clean_stack.revoke_role("chat", "PUBLIC")


def test_no_secret_reaches_the_stand_in_log(local_stack, standin_log, snowflake_auth):
    pat = local_stack.issue_pat()
    login = _login(local_stack, local_stack.issue_oauth_token())
    requests.post(f"{local_stack.chat_url}/__call__", json={"data": "broken"}, headers=snowflake_auth(pat), timeout=10)
    requests.post(f"{local_stack.chat_url}/__call__", json=CHAT_BODY,
                  headers=snowflake_auth(login["data"]["masterToken"]), timeout=10)
    log_text = standin_log.read_text()
    assert "401 on /__call__" in log_text  # the refused header was logged, redacted
    for secret in (pat, login["data"]["token"], login["data"]["masterToken"], CLIENT_SECRET):
        assert secret not in log_text
