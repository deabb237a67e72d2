"""The key-pair JWT that ``/oauth/token`` exchanges for an ingress token.

Built as snowflake-ml ``_internal/utils/jwt_generator.py`` builds it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import urlparse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import register_secret

JWT_LIFETIME_SECONDS = 59 * 60  # snowflake-ml's default; Snowflake refuses JWTs living over 1 h


def jwt_account(account_url: str, account_identifier: str | None = None) -> str:
    """``ACCOUNT`` of the claims: the first label of the identifier (else of the account host), upper-cased;
    for ``.global`` names, the part before the first ``-``. An org account name containing ``_`` appears with
    ``-`` in its host, so such accounts set the identifier explicitly."""
    name = (account_identifier or urlparse(account_url).hostname or "").lower()
    first_label = name.split(".")[0]
    if ".global." in f"{name}.":
        first_label = first_label.split("-")[0]
    return first_label.upper()


def load_private_key(pem: str, passphrase: str | None) -> RSAPrivateKey:
    """Parse the preset's PEM (PKCS#8 or PKCS#1, optionally encrypted); bad input → ``ConfigurationError``."""
    text = pem.strip().replace("\\n", "\n")  # tolerate a PEM pasted with escaped newlines
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=password)
    except TypeError:
        if passphrase:
            raise ConfigurationError(
                "The private key is not encrypted, but the preset gives a passphrase.",
                fix="Clear 'Private key passphrase', or paste the encrypted PEM (BEGIN ENCRYPTED PRIVATE KEY).",
            ) from None
        raise ConfigurationError(
            "The private key is encrypted, but the preset gives no passphrase.",
            fix="Fill 'Private key passphrase' in the service-account preset.",
        ) from None
    except ValueError:
        raise ConfigurationError(
            "The private key could not be read (not a PEM private key, or a wrong passphrase).",
            fix="Paste the whole PEM, BEGIN and END lines included, into 'Private key (PEM)', and check the "
            "passphrase.",
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigurationError(
            "The private key is not an RSA key; Snowflake key-pair authentication needs RSA.",
            fix="Generate one with `openssl genrsa 2048 | openssl pkcs8 -topk8 -nocrypt` and register its public "
            "key with ALTER USER … SET RSA_PUBLIC_KEY.",
        )
    return key


def public_key_fingerprint(key: RSAPrivateKey) -> str:
    """``SHA256:<base64 sha256 of the DER public key>``, as Snowflake shows in DESC USER (RSA_PUBLIC_KEY_FP)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def build_assertion(account_url: str, account_identifier: str | None, user: str, key: RSAPrivateKey) -> str:
    """A fresh RS256 JWT for ``<ACCOUNT>.<USER>``, valid 59 minutes."""
    qualified_user = f"{jwt_account(account_url, account_identifier)}.{user.upper()}"
    issued_at = int(time.time())
    claims = {
        "iss": f"{qualified_user}.{public_key_fingerprint(key)}",
        "sub": qualified_user,
        "iat": issued_at,
        "exp": issued_at + JWT_LIFETIME_SECONDS,
    }
    assertion = jwt.encode(claims, key, algorithm="RS256")
    register_secret(assertion)
    return assertion
