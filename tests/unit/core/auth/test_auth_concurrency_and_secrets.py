"""Many threads share one exchange; no secret ever reaches a log record or an exception's text."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from spcs_llm.core.auth import token_source_for
from spcs_llm.core.config import AuthConfig
from spcs_llm.core.errors import SpcsLlmError

ACCOUNT = "https://myorg-myacct.snowflakecomputing.com"
HOST = "abc123-myorg-myacct.snowflakecomputing.app"
LOGIN_URL = f"{ACCOUNT}/session/v1/login-request"
RENEW_URL = f"{ACCOUNT}/session/token-request"
TOKEN_URL = f"{ACCOUNT}/oauth/token"
THREADS = 16


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def login_ok(session: str, master: str) -> dict:
    return {"success": True, "data": {"token": session, "validityInSeconds": 3600, "masterToken": master,
                                      "masterValidityInSeconds": 14400}}


def all_at_once(call):
    """Run ``call`` on 16 threads released together; return their results."""
    barrier = threading.Barrier(THREADS)

    def run(_):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def slow_login(calls: list):
    def answer(request):
        calls.append(1)
        time.sleep(0.05)  # keep the first fetch in flight while the others arrive
        return 200, {}, json.dumps(login_ok(f"session-token-{len(calls):04d}", "master-token-0001"))

    return answer


def test_sixteen_threads_asking_at_once_cause_one_login(http):
    calls: list = []
    http.add_callback(responses.POST, LOGIN_URL, callback=slow_login(calls))
    config = AuthConfig(kind="oauth", account_url=ACCOUNT, oauth_mode="exchange", oauth_token="ver:1-hint:access-1")
    tokens = all_at_once(lambda: token_source_for(config, HOST).credential().token)
    assert len(calls) == 1
    assert set(tokens) == {"session-token-0001"}


def test_sixteen_threads_renewing_the_same_rejected_token_cause_one_renewal(http):
    calls: list = []
    http.add_callback(responses.POST, LOGIN_URL, callback=slow_login(calls))

    def slow_renewal(request):
        calls.append(1)
        time.sleep(0.05)
        return 200, {}, json.dumps({"success": True, "data": {"sessionToken": "session-token-renewed"}})

    http.add_callback(responses.POST, RENEW_URL, callback=slow_renewal)
    config = AuthConfig(kind="oauth", account_url=ACCOUNT, oauth_mode="exchange", oauth_token="ver:1-hint:access-1")
    source = token_source_for(config, HOST)
    rejected = source.credential()
    tokens = all_at_once(lambda: source.renew(rejected).token)
    assert len(calls) == 2  # the first login, then exactly one renewal
    assert set(tokens) == {"session-token-renewed"}


def test_sixteen_threads_of_two_users_each_get_their_own_token(http):
    def exchange(request):
        pat = parse_qs(request.body)["subject_token"][0]
        time.sleep(0.02)
        return 200, {}, f"ingress-token-for-{pat}"

    http.add_callback(responses.POST, TOKEN_URL, callback=exchange)
    users = [AuthConfig(kind="pat", account_url=ACCOUNT, pat=f"pat-of-user-{n}", pat_exchange=True) for n in (1, 2)]
    barrier_results = all_at_once(
        lambda: [(config.pat, token_source_for(config, HOST).credential().token) for config in users]
    )
    for pairs in barrier_results:
        for pat, token in pairs:
            assert token == f"ingress-token-for-{pat}"
    assert len(http.calls) == 2


# --- secret scan --------------------------------------------------------------------------------------------------


def test_no_secret_reaches_logs_or_exception_text(http, caplog):
    caplog.set_level(logging.DEBUG)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    passphrase = "passphrase-very-secret-42"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    exchanged = jwt.encode({"exp": int(time.time()) + 3600}, "test-signing-key-of-32-bytes-long!", algorithm="HS256")
    secrets = {
        "access": "ver:1-hint:access-secret-aaaa",
        "session": "session-secret-bbbb",
        "master": "master-secret-cccc",
        "renewed": "renewed-session-secret-dddd",
        "pat": "pat-secret-eeee-ffff",
        "exchanged": exchanged,
        "passphrase": passphrase,
    }
    errors: list[SpcsLlmError] = []

    def attempt(action):
        try:
            action()
        except SpcsLlmError as error:
            errors.append(error)

    # exchanged OAuth: a transient failure, login, renewal via master token, refused renewal, refused login
    http.add(responses.POST, LOGIN_URL, status=503)
    http.add(responses.POST, LOGIN_URL, json=login_ok(secrets["session"], secrets["master"]))
    http.add(responses.POST, RENEW_URL, json={"success": True, "data": {"sessionToken": secrets["renewed"]}})
    oauth = AuthConfig(kind="oauth", account_url=ACCOUNT, oauth_mode="auto", oauth_token=secrets["access"])
    source = token_source_for(oauth, HOST)
    session = source.renew(source.credential())
    renewed = source.renew(session)
    http.replace(responses.POST, RENEW_URL, json={"success": False, "code": "390114", "message": "expired"})
    http.replace(responses.POST, LOGIN_URL, json={"success": False, "code": "390318", "message": "expired"})
    attempt(lambda: source.renew(renewed))
    attempt(lambda: token_source_for(AuthConfig(kind="oauth", oauth_mode="direct", oauth_token=secrets["access"]),
                                     HOST).renew(session))
    # PAT direct and exchanged, including refusals and an unreachable account
    pat_direct = token_source_for(AuthConfig(kind="pat", pat=secrets["pat"]), HOST)
    attempt(lambda: pat_direct.renew(pat_direct.credential()))
    http.add(responses.POST, TOKEN_URL, body=exchanged)
    pat_exchange = AuthConfig(kind="pat", account_url=ACCOUNT, pat=secrets["pat"], pat_exchange=True)
    token_source_for(pat_exchange, HOST).credential()
    http.replace(responses.POST, TOKEN_URL, status=401, body="bad token")
    attempt(lambda: token_source_for(pat_exchange, "other.snowflakecomputing.app").credential())
    http.replace(responses.POST, TOKEN_URL, body=requests.ConnectionError("unreachable"))
    attempt(lambda: token_source_for(pat_exchange, "third.snowflakecomputing.app").credential())
    # key pair: success, refusal, wrong passphrase
    http.replace(responses.POST, TOKEN_URL, body=exchanged)
    keypair = AuthConfig(kind="keypair", account_url=ACCOUNT, user="svc", private_key_pem=pem,
                         private_key_passphrase=passphrase)
    token_source_for(keypair, HOST).credential()
    secrets["assertion"] = parse_qs(http.calls[-1].request.body)["assertion"][0]
    http.replace(responses.POST, TOKEN_URL, status=400, body="JWT token is invalid.")
    attempt(lambda: token_source_for(keypair, "other.snowflakecomputing.app").credential())
    wrong = AuthConfig(kind="keypair", account_url=ACCOUNT, user="svc", private_key_pem=pem,
                       private_key_passphrase="wrong-passphrase-0000")
    attempt(lambda: token_source_for(wrong, HOST).credential())

    assert len(errors) == 7
    texts = [record.getMessage() for record in caplog.records]
    texts += [text for error in errors for text in (str(error), repr(error), error.message, error.fix)]
    assert any("Renewed the Snowflake session token" in text for text in texts)
    assert any("switching to Snowflake session tokens" in text for text in texts)
    pem_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    needles = [value[4:-4] for value in secrets.values()] + pem_lines + ["wrong-passphrase"]
    leaks = [(needle, text) for needle in needles for text in texts if needle in text]
    assert leaks == []
