"""Service-account token sources: PAT (direct or exchanged) and key pair (JWT exchanged at /oauth/token)."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from spcs_llm.core.auth import token_source_for
from spcs_llm.core.auth.keypair import jwt_account
from spcs_llm.core.config import AuthConfig, parse_auth
from spcs_llm.core.errors import AuthenticationError, ConfigurationError

ACCOUNT = "https://myorg-myacct.snowflakecomputing.com"
HOST = "abc123-myorg-myacct.snowflakecomputing.app"
TOKEN_URL = f"{ACCOUNT}/oauth/token"
PAT = "pat-secret-0123456789abcdef"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key, passphrase: str | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def ingress_token(exp: int, name: str = "exchanged") -> str:
    return jwt.encode({"exp": exp, "sub": name}, "test-signing-key-of-32-bytes-long!", algorithm="HS256")


def form_of(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def pat_auth(exchange: bool = False, role: str | None = "ANALYST") -> AuthConfig:
    return AuthConfig(kind="pat", account_url=ACCOUNT, role=role, user="svc_llm", pat=PAT, pat_exchange=exchange)


def keypair_auth(pem: str, passphrase: str | None = None, user: str | None = "svc_llm", role="ANALYST") -> AuthConfig:
    return AuthConfig(
        kind="keypair",
        account_url=ACCOUNT,
        role=role,
        user=user,
        private_key_pem=pem,
        private_key_passphrase=passphrase,
    )


# --- PAT ------------------------------------------------------------------------------------------------------


def test_pat_is_sent_as_is_and_never_expires(http):
    credential = token_source_for(pat_auth(), HOST).credential()
    assert credential.headers() == {"Authorization": f'Snowflake Token="{PAT}"'}
    assert credential.kind == "pat"
    assert credential.expires_at == float("inf")
    assert len(http.calls) == 0


def test_rejected_pat_names_every_likely_fix():
    source = token_source_for(pat_auth(), HOST)
    with pytest.raises(AuthenticationError) as caught:
        source.renew(source.credential())
    text = str(caught.value)
    for fix in ("expired or revoked", "ADD PROGRAMMATIC ACCESS TOKEN", "ROLE_RESTRICTION", "network policy"):
        assert fix in text


def test_pat_exchange_posts_the_token_exchange_form(http, clock):
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 1800))
    credential = token_source_for(pat_auth(exchange=True), HOST).credential()
    assert form_of(http.calls[0]) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": PAT,
        "subject_token_type": "programmatic_access_token",
        "scope": f"session:role:ANALYST {HOST}",
    }
    assert http.calls[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert credential.kind == "pat-exchanged"
    assert credential.token == ingress_token(NOW + 1800)
    assert credential.expires_at == NOW + 1800


def test_pat_exchange_without_role_scopes_to_the_host_only(http):
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 1800))
    token_source_for(pat_auth(exchange=True, role=None), HOST).credential()
    assert form_of(http.calls[0])["scope"] == HOST


def test_an_opaque_exchanged_token_is_kept_about_an_hour(http, clock):
    http.add(responses.POST, TOKEN_URL, body="opaque-exchanged-token-123\n")
    credential = token_source_for(pat_auth(exchange=True), HOST).credential()
    assert credential.token == "opaque-exchanged-token-123"
    assert credential.expires_at == NOW + 3600


def test_exchanged_token_is_reused_then_fetched_again_near_expiry(http, clock):
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 600, "first"))
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 1200, "second"))
    source = token_source_for(pat_auth(exchange=True), HOST)
    first = source.credential()
    clock.move_to("2026-01-01 00:08:59")  # 61 s before expiry: outside the 60 s (10 %) margin
    assert source.credential() == first
    clock.move_to("2026-01-01 00:09:01")  # inside it
    assert source.credential().token == ingress_token(NOW + 1200, "second")
    assert len(http.calls) == 2


def test_rejected_exchanged_token_is_exchanged_again(http):
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 10**6, "first"))
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 10**6, "second"))
    source = token_source_for(pat_auth(exchange=True), HOST)
    assert source.renew(source.credential()).token == ingress_token(NOW + 10**6, "second")


def test_refused_pat_exchange_is_an_authentication_error_with_snowflake_message(http):
    http.add(responses.POST, TOKEN_URL, status=400, json={"message": "Invalid programmatic access token"})
    with pytest.raises(AuthenticationError) as caught:
        token_source_for(pat_auth(exchange=True), HOST).credential()
    assert "Invalid programmatic access token" in str(caught.value)
    assert "ROLE_RESTRICTION" in str(caught.value)
    assert caught.value.status == 400


def test_pat_exchange_needs_an_account_url():
    config = AuthConfig(kind="pat", pat=PAT, pat_exchange=True)
    with pytest.raises(ConfigurationError, match="Snowflake account URL"):
        token_source_for(config, HOST)


# --- key pair ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, "correct horse battery"])
def test_keypair_exchange_sends_a_signed_jwt_with_the_documented_claims(http, clock, rsa_key, passphrase):
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 3000))
    credential = token_source_for(keypair_auth(pem_of(rsa_key, passphrase), passphrase), HOST).credential()

    form = form_of(http.calls[0])
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert form["scope"] == f"session:role:ANALYST {HOST}"
    claims = jwt.decode(form["assertion"], rsa_key.public_key(), algorithms=["RS256"], options={"verify_exp": False})
    der = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert claims == {
        "iss": f"MYORG-MYACCT.SVC_LLM.SHA256:{fingerprint}",
        "sub": "MYORG-MYACCT.SVC_LLM",
        "iat": NOW,
        "exp": NOW + 59 * 60,
    }
    assert credential.kind == "keypair-exchanged"
    assert credential.expires_at == NOW + 3000


def test_an_explicit_account_identifier_names_the_jwt_account(http, rsa_key):
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 3000))
    config = AuthConfig(
        kind="keypair", account_url=ACCOUNT, account_identifier="myorg-my_account", user="svc_llm",
        private_key_pem=pem_of(rsa_key),
    )
    token_source_for(config, HOST).credential()
    assertion = form_of(http.calls[0])["assertion"]
    claims = jwt.decode(assertion, rsa_key.public_key(), algorithms=["RS256"], options={"verify_exp": False})
    assert claims["sub"] == "MYORG-MY_ACCOUNT.SVC_LLM"


def test_the_service_preset_account_identifier_is_parsed(rsa_key):
    config = parse_auth({
        "auth_type": "service",
        "service_preset": {
            "service_auth": "keypair", "account_url": ACCOUNT, "account_identifier": " myorg-my_account ",
            "user": "svc_llm", "private_key": pem_of(rsa_key),
        },
    })
    assert config.account_identifier == "myorg-my_account"


def test_refused_keypair_exchange_names_the_public_key_registration(http, rsa_key):
    http.add(responses.POST, TOKEN_URL, status=400, json={"code": "390144", "message": "JWT token is invalid."})
    with pytest.raises(AuthenticationError) as caught:
        token_source_for(keypair_auth(pem_of(rsa_key)), HOST).credential()
    text = str(caught.value)
    assert "RSA_PUBLIC_KEY" in text and "SVC_LLM" in text and "JWT token is invalid." in text
    assert "RSA_PUBLIC_KEY_FP = SHA256:" in text


def test_a_pem_with_escaped_newlines_is_accepted(http, rsa_key):
    http.add(responses.POST, TOKEN_URL, body=ingress_token(NOW + 3000))
    escaped = pem_of(rsa_key).replace("\n", "\\n")
    assert token_source_for(keypair_auth(escaped), HOST).credential().kind == "keypair-exchanged"


def test_a_garbage_pem_is_a_configuration_error(http):
    pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"
    with pytest.raises(ConfigurationError, match="could not be read"):
        token_source_for(keypair_auth(pem), HOST).credential()
    assert len(http.calls) == 0


@pytest.mark.parametrize(
    ("pem_passphrase", "given_passphrase", "message"),
    [
        ("right-passphrase", "wrong-passphrase", "wrong passphrase"),
        ("right-passphrase", None, "gives no passphrase"),
        (None, "unneeded-passphrase", "not encrypted"),
    ],
)
def test_passphrase_mismatches_are_configuration_errors(http, rsa_key, pem_passphrase, given_passphrase, message):
    with pytest.raises(ConfigurationError, match=message):
        token_source_for(keypair_auth(pem_of(rsa_key, pem_passphrase), given_passphrase), HOST).credential()
    assert len(http.calls) == 0


def test_a_non_rsa_key_is_a_configuration_error(http):
    pem = pem_of(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ConfigurationError, match="not an RSA key"):
        token_source_for(keypair_auth(pem), HOST).credential()


def test_keypair_needs_a_user(rsa_key):
    with pytest.raises(ConfigurationError, match="User"):
        token_source_for(keypair_auth(pem_of(rsa_key), user=None), HOST)


@pytest.mark.parametrize(
    ("url", "account_name"),
    [
        ("https://myorg-myacct.snowflakecomputing.com", "MYORG-MYACCT"),
        ("https://xy12345.us-east-1.aws.snowflakecomputing.com", "XY12345"),
        ("https://xy12345-abc.global.snowflakecomputing.com", "XY12345"),
        ("https://myacct.privatelink.snowflakecomputing.com", "MYACCT"),
    ],
)
def test_jwt_account_follows_the_snowflake_rules(url, account_name):
    assert jwt_account(url) == account_name
