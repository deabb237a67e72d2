"""Every auth mode against the Cortex endpoints: Bearer token + its type header, renewal, refusal, redaction."""

import json

import jwt
import pytest
import responses
from cortex_support import ACCOUNT_URL, CHAT_URL, PAT, chat_client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from error_checks import assert_fix
from spcs_llm.core.auth.keypair import public_key_fingerprint
from spcs_llm.core.errors import AuthenticationError, ConfigurationError, CredentialMissingError, RequestRejectedError
from spcs_llm.cortex.client import CortexChatClient
from spcs_llm.cortex.config import parse_cortex_chat_config
from spcs_llm.cortex.dss_adapter import CortexChatAdapter

OK = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
QUERY = {"messages": [{"role": "user", "content": "hi"}]}
OAUTH_TOKEN = "cortex-oauth-access-token-0123456789"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def client_for(config: dict) -> CortexChatClient:
    return CortexChatClient(parse_cortex_chat_config({"model": "claude-3-5-sonnet", **config}), sleep=lambda _s: None)


def oauth_config():
    return {"auth_type": "oauth", "account_url": ACCOUNT_URL, "oauth_preset": {"snowflake_oauth": OAUTH_TOKEN}}


def keypair_config(key):
    return {"auth_type": "service", "service_preset": {"service_auth": "keypair", "user": "svc_llm",
                                                       "private_key": pem_of(key), "account_url": ACCOUNT_URL}}


def test_a_pat_is_sent_as_a_bearer_programmatic_access_token(http):
    http.add(responses.POST, CHAT_URL, json=OK)
    CortexChatAdapter(chat_client()).process(QUERY, {}, None)
    headers = http.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {PAT}"
    assert headers["X-Snowflake-Authorization-Token-Type"] == "PROGRAMMATIC_ACCESS_TOKEN"


def test_an_oauth_access_token_is_sent_as_a_bearer_oauth_token(http):
    http.add(responses.POST, CHAT_URL, json=OK)
    CortexChatAdapter(client_for(oauth_config())).process(QUERY, {}, None)
    headers = http.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {OAUTH_TOKEN}"
    assert headers["X-Snowflake-Authorization-Token-Type"] == "OAUTH"


def test_a_key_pair_signs_a_jwt_sent_directly_as_the_bearer_token(http, rsa_key):
    http.add(responses.POST, CHAT_URL, json=OK)
    CortexChatAdapter(client_for(keypair_config(rsa_key))).process(QUERY, {}, None)
    headers = http.calls[0].request.headers
    assert headers["X-Snowflake-Authorization-Token-Type"] == "KEYPAIR_JWT"
    token = headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"])
    assert claims["sub"] == "MYORG-MYACCT.SVC_LLM"
    assert claims["iss"] == f"MYORG-MYACCT.SVC_LLM.{public_key_fingerprint(rsa_key)}"
    assert claims["exp"] - claims["iat"] == 59 * 60
    assert len(http.calls) == 1  # nothing is exchanged: no /oauth/token call


def test_a_rejected_jwt_is_signed_again_and_the_request_retried(http, rsa_key):
    http.add(responses.POST, CHAT_URL, status=401, json={"code": "390144", "message": "JWT token is invalid."})
    http.add(responses.POST, CHAT_URL, json=OK)
    response = CortexChatAdapter(client_for(keypair_config(rsa_key))).process(QUERY, {}, None)
    assert response["text"] == "ok" and len(http.calls) == 2
    assert all(c.request.headers["X-Snowflake-Authorization-Token-Type"] == "KEYPAIR_JWT" for c in http.calls)


def test_a_rejected_pat_fails_with_the_cortex_fix_and_never_shows_the_token(http):
    for _ in range(2):
        http.add(responses.POST, CHAT_URL, status=401, json={"message": f"Invalid token {PAT}"})
    with pytest.raises(AuthenticationError) as failed:
        CortexChatAdapter(chat_client()).process(QUERY, {}, None)
    assert "CORTEX_USER" in failed.value.fix and "DEFAULT" in failed.value.fix
    assert PAT not in str(failed.value)


def test_a_rejected_oauth_token_asks_for_a_fresh_dss_credential(http):
    for _ in range(2):
        http.add(responses.POST, CHAT_URL, status=401, json={"message": "expired"})
    with pytest.raises(CredentialMissingError) as refused:
        CortexChatAdapter(client_for(oauth_config())).process(QUERY, {}, None)
    assert_fix(refused, "Profile & Settings → Credentials", "Authorize")


def test_error_texts_from_cortex_are_redacted(http):
    http.add(responses.POST, CHAT_URL, status=400,
             json={"message": f"bad request for token {PAT}", "code": "390142"})
    with pytest.raises(RequestRejectedError) as rejected:
        CortexChatAdapter(chat_client()).process(QUERY, {}, None)
    assert PAT not in str(rejected.value) and "bad request" in str(rejected.value)


def test_a_missing_account_url_is_a_configuration_error_naming_the_setting():
    with pytest.raises(ConfigurationError, match="account URL"):
        parse_cortex_chat_config({"auth_type": "service", "service_preset": {"service_auth": "pat", "pat": PAT}})


def test_a_request_body_never_carries_the_credential(http):
    http.add(responses.POST, CHAT_URL, json=OK)
    CortexChatAdapter(chat_client()).process(QUERY, {}, None)
    assert PAT not in http.calls[0].request.body.decode() and json.loads(http.calls[0].request.body)["model"]
