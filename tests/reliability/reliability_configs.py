"""DSS ``config`` dicts as DSS resolves them for the plugin's components (presets included), and test key pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secret_ledger import SecretLedger

ROLE = "SPCS_LLM_USER"
ACCOUNT_IDENTIFIER = "LOCALTEST"
KEY_PASSPHRASE = "reliability-key-passphrase-7781"


def oauth_preset(token: str | None, account_url: str, mode: str = "exchange", role: str = ROLE) -> dict:
    """The per-user OAuth preset as DSS resolves it: the user's access token plus the preset's settings."""
    return {"auth_type": "oauth", "oauth_preset": {
        "snowflake_oauth": token, "account_url": account_url, "account_identifier": ACCOUNT_IDENTIFIER,
        "role": role, "oauth_mode": mode}}


def pat_preset(pat: str | None, account_url: str, *, exchange: bool = False) -> dict:
    return {"auth_type": "service", "service_preset": {
        "service_auth": "pat", "pat": pat, "pat_exchange": exchange, "account_url": account_url,
        "account_identifier": ACCOUNT_IDENTIFIER, "role": ROLE}}


def keypair_preset(pem: str, account_url: str, passphrase: str | None = None, user: str = "LOCAL_USER") -> dict:
    return {"auth_type": "service", "service_preset": {
        "service_auth": "keypair", "user": user, "private_key": pem, "private_key_passphrase": passphrase,
        "role": ROLE, "account_url": account_url, "account_identifier": ACCOUNT_IDENTIFIER}}


def model_config(endpoint: str, auth: dict, **params: Any) -> dict:
    return {"endpoint": endpoint, **auth, **params}


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str
    encrypted_pem: str  # the same key, encrypted with KEY_PASSPHRASE


def make_key_pair(ledger: SecretLedger) -> KeyPair:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(KEY_PASSPHRASE.encode())).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    ledger.add_private_key(private)
    ledger.add_private_key(encrypted)
    return KeyPair(private, public, encrypted)
