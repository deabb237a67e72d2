"""Every credential the stand-in issues or accepts, with its owner, role and expiry.

Opaque tokens (codes, OAuth, session, master, PAT) are random strings; the token returned by ``/oauth/token`` is
a JWT so clients can decode its ``exp`` (as sfc-gh-bhess/ex_spcs_token ``keypair_gen.py``
decodes it). All state lives in
one process and is touched only from the event loop, so plain dicts suffice.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum

import jwt
from cryptography.hazmat.primitives import serialization

from spcs_llm.core.redaction import register_secret

# snowflake-ml utils/authentication.py: `Authorization: Snowflake Token="<token>"`, with literal double quotes.
_SNOWFLAKE_TOKEN_HEADER = re.compile(r'^\s*Snowflake\s+Token="([^"]+)"\s*$', re.IGNORECASE)


def snowflake_token(header: str | None) -> str | None:
    """The token inside a `Snowflake Token="..."` Authorization header, or None for any other form."""
    match = _SNOWFLAKE_TOKEN_HEADER.match(header or "")
    return match.group(1) if match else None


class TokenKind(str, Enum):
    AUTHORIZATION_CODE = "authorization_code"
    OAUTH_ACCESS = "oauth_access"
    OAUTH_REFRESH = "oauth_refresh"
    SESSION = "session"
    MASTER = "master"
    EXCHANGED = "exchanged"
    PAT = "pat"


@dataclass
class TokenRecord:
    """What the stand-in knows about one token. ``detail`` holds grant data (PKCE challenge, redirect URI, ...)."""

    kind: TokenKind
    user: str
    role: str
    issued_at: float
    expires_at: float
    scope: tuple[str, ...] = ()
    detail: dict[str, str] = field(default_factory=dict)
    revoked: bool = False

    def expired(self, now: float | None = None) -> bool:
        return self.revoked or (now if now is not None else time.time()) >= self.expires_at


class KeyPairError(Exception):
    """A key-pair JWT was refused; the message is safe to return (it never quotes the assertion)."""


class CredentialStore:
    """Issue and look up tokens; verify key-pair JWTs against registered public keys."""

    def __init__(self, account: str) -> None:
        self.account = account.upper()
        self._tokens: dict[str, TokenRecord] = {}
        self._public_keys: dict[str, dict[str, object]] = {}  # user -> {fingerprint: public key}
        self._signing_secret = secrets.token_bytes(32)

    def issue(self, kind: TokenKind, user: str, role: str, ttl: float, *, scope: tuple[str, ...] = (),
              detail: dict[str, str] | None = None) -> str:
        now = time.time()
        record = TokenRecord(kind, user.upper(), role.upper(), now, now + ttl, scope, dict(detail or {}))
        if kind is TokenKind.EXCHANGED:
            token = jwt.encode(
                {"iss": f"{self.account}.local-oauth", "sub": f"{self.account}.{record.user}", "role": record.role,
                 "scp": " ".join(scope), "iat": int(now), "exp": int(record.expires_at), "jti": secrets.token_hex(8)},
                self._signing_secret, algorithm="HS256",
            )
        else:
            token = f"ver:1-hint:{secrets.randbelow(10**6)}-{kind.value}-{secrets.token_urlsafe(32)}"
        register_secret(token)
        self._tokens[token] = record
        return token

    def lookup(self, token: str) -> TokenRecord | None:
        return self._tokens.get(token)

    def consume_code(self, code: str) -> TokenRecord | None:
        """Authorization codes are single-use (RFC 6749 §4.1.2)."""
        record = self._tokens.get(code)
        if record is None or record.kind is not TokenKind.AUTHORIZATION_CODE:
            return None
        del self._tokens[code]
        return record

    def revoke(self, token: str) -> None:
        if token in self._tokens:
            self._tokens[token].revoked = True

    def register_public_key(self, user: str, pem: str) -> str:
        """Like ``ALTER USER u SET RSA_PUBLIC_KEY=...``; returns the ``SHA256:`` fingerprint used in the JWT iss."""
        key = serialization.load_pem_public_key(pem.encode())
        fingerprint = public_key_fingerprint(key)
        self._public_keys.setdefault(user.upper(), {})[fingerprint] = key
        return fingerprint

    def verify_keypair_jwt(self, assertion: str, max_lifetime: int) -> str:
        """Return the user a key-pair JWT authenticates, or raise ``KeyPairError``.

        snowflake-ml ``_internal/utils/jwt_generator.py``: RS256; iss = "<ACCOUNT>.<USER>.SHA256:<fp>",
        sub = "<ACCOUNT>.<USER>"; lifetime ≤ 1 h (inferred).
        """
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise KeyPairError("JWT token is malformed.") from exc
        if header.get("alg") != "RS256":
            raise KeyPairError("JWT must be signed with RS256.")
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        account, _, rest = issuer.partition(".")
        user, _, fingerprint = rest.partition(".")
        if account.upper() != self.account or not fingerprint.startswith("SHA256:"):
            raise KeyPairError(f"JWT iss must be '{self.account}.<USER>.SHA256:<fingerprint>'.")
        if subject.upper() != f"{self.account}.{user.upper()}":
            raise KeyPairError(f"JWT sub must be '{self.account}.<USER>' and match iss.")
        key = self._public_keys.get(user.upper(), {}).get(fingerprint)
        if key is None:
            raise KeyPairError("JWT public key fingerprint does not match the user's registered RSA_PUBLIC_KEY.")
        try:
            verified = jwt.decode(assertion, key, algorithms=["RS256"], options={"require": ["iat", "exp"]})
        except jwt.ExpiredSignatureError as exc:
            raise KeyPairError("JWT token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise KeyPairError("JWT signature is invalid.") from exc
        if int(verified["exp"]) - int(verified["iat"]) > max_lifetime + 60:
            raise KeyPairError(f"JWT lifetime exceeds {max_lifetime} seconds.")
        return user.upper()


def public_key_fingerprint(key) -> str:  # key: an RSA public key object from cryptography
    """``SHA256:`` + base64 of the SHA-256 of the DER SubjectPublicKeyInfo (snowflake-ml ``jwt_generator.py``)."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def pkce_s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def parse_role_scope(scope: str, prefixes: tuple[str, ...] = ("session:role:",)) -> str | None:
    """The role named in an OAuth scope string, if any."""
    for part in scope.split():
        for prefix in prefixes:
            if part.lower().startswith(prefix):
                return part[len(prefix):].upper()
    return None
