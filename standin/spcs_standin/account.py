"""The Snowflake account stand-in: Snowflake OAuth, ``login-request`` sessions, and ``/oauth/token`` exchanges.

Request and answer shapes follow snowflake-connector-python (``auth/_auth.py``, ``auth/_oauth_base.py``,
``network.py``: login-request / token-request), snowflake-ml ``utils/authentication.py`` (key-pair JWT exchange),
sfc-gh-bhess/ex_spcs_token ``pat_gen.py`` (PAT token-exchange) and Snowflake-Labs spcs-templates
``spcs-ingress-auth/external_browser_demo.py`` (Snowflake OAuth for a custom client).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from spcs_llm.core.redaction import get_logger
from spcs_standin.credentials import (
    CredentialStore,
    KeyPairError,
    TokenKind,
    parse_role_scope,
    pkce_s256,
    snowflake_token,
)
from spcs_standin.settings import StandinSettings

log = get_logger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
PAT_TOKEN_TYPE = "programmatic_access_token"
# login-request failure codes (snowflake-connector network.py; snowflake-jdbc Constants).
OAUTH_TOKEN_INVALID = "390303"
OAUTH_TOKEN_EXPIRED = "390318"
SESSION_EXPIRED = "390112"
MASTER_TOKEN_EXPIRED = "390114"


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """RFC 6749 §5.2 error body, the shape Snowflake OAuth's token endpoint answers
    with (inferred: the exact Snowflake wording)."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def gs_failure(code: str | None, message: str) -> JSONResponse:
    """A login failure as snowflake-connector network.py reads it: HTTP 200 with success:false and the GS code."""
    return JSONResponse({"success": False, "code": code, "message": message, "data": {"errorCode": code}})


class AccountApp:
    """Routes of the account host. Holds no state of its own beyond the settings and the credential store."""

    def __init__(self, settings: StandinSettings, credentials: CredentialStore) -> None:
        self.settings = settings
        self.credentials = credentials

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token-request", self.token_request, methods=["POST"]),
            Route("/oauth/token", self.oauth_token, methods=["POST"]),
            Route("/session/v1/login-request", self.login_request, methods=["POST"]),
            Route("/session/token-request", self.session_token_request, methods=["POST"]),
        ]

    # --- Snowflake OAuth (spcs-templates external_browser_demo.py; connector auth/_oauth_base.py) ---------------

    async def authorize(self, request: Request) -> Response:
        """GET /oauth/authorize. Auto-approves the configured local user (no consent page)."""
        q = request.query_params
        s = self.settings
        # RFC 6749 §4.1.2.1: a bad client or redirect URI is shown to the user, never redirected to.
        if q.get("client_id") != s.oauth_client_id:
            return PlainTextResponse("Invalid consent request: unknown client_id.", status_code=400)
        if q.get("redirect_uri") != s.oauth_redirect_uri:
            return PlainTextResponse("Invalid consent request: redirect_uri does not match the integration's "
                                     "OAUTH_REDIRECT_URI.", status_code=400)
        state = q.get("state")

        def back(**params: str) -> RedirectResponse:
            if state is not None:
                params["state"] = state
            return RedirectResponse(f"{s.oauth_redirect_uri}?{urlencode(params)}", status_code=302)

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response_type must be 'code'.")
        scope = q.get("scope", "")
        role, scope_error = self._scope_role(scope)
        if scope_error:
            return back(error="invalid_scope", error_description=scope_error)
        challenge = q.get("code_challenge")
        if challenge and q.get("code_challenge_method", "plain") != "S256":
            return back(error="invalid_request", error_description="code_challenge_method must be S256.")
        if s.oauth_public_client and not challenge:
            return back(error="invalid_request", error_description="Public clients must use PKCE (S256).")
        code = self.credentials.issue(
            TokenKind.AUTHORIZATION_CODE, s.user, role, s.lifetimes.authorization_code, scope=tuple(scope.split()),
            detail={"redirect_uri": s.oauth_redirect_uri, "code_challenge": challenge or ""},
        )
        return back(code=code)

    def _scope_role(self, scope: str) -> tuple[str, str | None]:
        """Snowflake OAuth scopes: `session:role:<ROLE>` picks the role, `refresh_token` asks for a refresh token."""
        for part in scope.split():
            if part != "refresh_token" and not part.lower().startswith("session:role:"):
                return "", f"Unsupported scope '{part}'; use 'refresh_token' and 'session:role:<ROLE>'."
        role = parse_role_scope(scope) or self.settings.role
        if role not in self.settings.user_roles:
            return "", f"Role {role} is not granted to user {self.settings.user}."
        return role, None

    async def token_request(self, request: Request) -> Response:
        """POST /oauth/token-request: authorization_code and refresh_token grants, and the token answer."""
        form = await _form(request)
        client_error = self._client_auth(request, form)
        if client_error is not None:
            return client_error
        grant = form.get("grant_type")
        if grant == "authorization_code":
            record = self.credentials.consume_code(str(form.get("code", "")))
            if record is None or record.expired():
                return oauth_error("invalid_grant", "The authorization code is invalid, used or expired.")
            if form.get("redirect_uri") != record.detail["redirect_uri"]:
                return oauth_error("invalid_grant", "redirect_uri does not match the authorization request.")
            challenge = record.detail["code_challenge"]
            if challenge and pkce_s256(str(form.get("code_verifier", ""))) != challenge:
                return oauth_error("invalid_grant", "PKCE code_verifier does not match the code_challenge.")
            return self._token_answer(record.role, record.scope, with_refresh="refresh_token" in record.scope)
        if grant == "refresh_token":
            record = self.credentials.lookup(str(form.get("refresh_token", "")))
            if record is None or record.kind is not TokenKind.OAUTH_REFRESH or record.expired():
                return oauth_error("invalid_grant", "The refresh token is invalid or expired.")
            asked = parse_role_scope(str(form.get("scope", "")))
            if asked and asked != record.role:
                return oauth_error("invalid_scope", "A refresh cannot change the session role.")
            return self._token_answer(record.role, record.scope, with_refresh=False)
        return oauth_error("unsupported_grant_type", "grant_type must be authorization_code or refresh_token.")

    def _client_auth(self, request: Request, form: dict[str, str]) -> Response | None:
        """/oauth/token-request client auth: Basic base64(client_id:client_secret), or client_id in the body for
        PUBLIC clients."""
        s = self.settings
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return oauth_error("invalid_client", "Malformed Basic authorization header.", 401)
            if client_id == s.oauth_client_id and secrets.compare_digest(secret, s.oauth_client_secret):
                return None
            return oauth_error("invalid_client", "Client authentication failed.", 401)
        if s.oauth_public_client and form.get("client_id") == s.oauth_client_id:
            return None
        return oauth_error("invalid_client", "Client authentication failed: send HTTP Basic client credentials.", 401)

    def _token_answer(self, role: str, scope: tuple[str, ...], *, with_refresh: bool) -> JSONResponse:
        s = self.settings
        body: dict[str, Any] = {
            "access_token": self.credentials.issue(TokenKind.OAUTH_ACCESS, s.user, role, s.lifetimes.oauth_access,
                                                   scope=scope),
            "token_type": "Bearer",
            "expires_in": s.lifetimes.oauth_access,
            "username": s.user,
            "scope": f"session:role:{role}" + (" refresh_token" if with_refresh else ""),
        }
        if with_refresh:
            body["refresh_token"] = self.credentials.issue(TokenKind.OAUTH_REFRESH, s.user, role,
                                                           s.lifetimes.oauth_refresh, scope=scope)
            body["refresh_token_expires_in"] = s.lifetimes.oauth_refresh
        return JSONResponse(body)

    # --- login-request sessions (snowflake-connector auth/_auth.py, network.py) ----------------------------------

    async def login_request(self, request: Request) -> Response:
        try:
            data = (await request.json())["data"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"success": False, "code": None, "message": "Malformed login request body."}, 400)
        if str(data.get("AUTHENTICATOR", "")).upper() != "OAUTH":
            return gs_failure(None, "The local stand-in accepts only AUTHENTICATOR=OAUTH with TOKEN=<access token>.")
        record = self.credentials.lookup(str(data.get("TOKEN", "")))
        if record is None or record.kind is not TokenKind.OAUTH_ACCESS:
            return gs_failure(OAUTH_TOKEN_INVALID, "Invalid OAuth access token. ")
        if record.expired():
            return gs_failure(OAUTH_TOKEN_EXPIRED, "OAuth access token expired. ")
        asked = request.query_params.get("roleName")
        # Inferred: the role the OAuth token is scoped to limits which roles are allowed.
        if asked and asked.upper() != record.role:
            return gs_failure(OAUTH_TOKEN_INVALID, f"Role {asked.upper()} is not allowed by the OAuth token's scope.")
        return JSONResponse({"success": True, "code": None, "message": None, "data": self._new_session(record.user,
                                                                                                        record.role)})

    def _new_session(self, user: str, role: str) -> dict[str, Any]:
        life = self.settings.lifetimes
        return {
            "token": self.credentials.issue(TokenKind.SESSION, user, role, life.session),
            "validityInSeconds": life.session,
            "masterToken": self.credentials.issue(TokenKind.MASTER, user, role, life.master),
            "masterValidityInSeconds": life.master,
            "sessionId": secrets.randbelow(10**12),
            "sessionInfo": {"databaseName": None, "schemaName": None, "warehouseName": None, "roleName": role},
            "parameters": [], "idToken": None, "mfaToken": None,
        }

    async def session_token_request(self, request: Request) -> Response:
        """Session renewal (inferred from connector network.py): master token in the Authorization header,
        RENEW or ISSUE."""
        # snowflake-connector's network.py (_token_request) always sends `?requestId=<uuid>` (REQUEST_ID =
        # "requestId"). Inferred: what the real account does without it is unknown; the stricter reading refuses.
        if not request.query_params.get("requestId"):
            return JSONResponse({"success": False, "code": None, "data": None,
                                 "message": "Missing requestId query parameter (send ?requestId=<uuid>)."}, 400)
        master_token = snowflake_token(request.headers.get("authorization"))
        master = self.credentials.lookup(master_token) if master_token else None
        if master is None or master.kind is not TokenKind.MASTER or master.expired():
            return gs_failure(MASTER_TOKEN_EXPIRED,
                              "Authentication token has expired. The user must authenticate again.")
        try:
            body = await request.json()
        except ValueError:
            return gs_failure(None, "Malformed token request body.")
        kind = body.get("requestType")
        if kind not in ("RENEW", "ISSUE"):
            return gs_failure(None, "requestType must be RENEW or ISSUE.")
        life = self.settings.lifetimes
        new = self.credentials.issue(TokenKind.SESSION, master.user, master.role, life.session)
        if kind == "RENEW":
            old = self.credentials.lookup(str(body.get("oldSessionToken", "")))
            if old is None or old.kind is not TokenKind.SESSION or old.user != master.user:
                return gs_failure(SESSION_EXPIRED,
                                  "Session no longer exists. New login required to access the service.")
            self.credentials.revoke(str(body["oldSessionToken"]))
        # Renew answer fields: sessionToken / validityInSecondsST / masterToken / validityInSecondsMT
        # (Snowflake's Go/.NET/Node drivers' RenewSessionResponseData; data.sessionToken as in Snowflake's SPCS
        # tutorial).
        return JSONResponse({"success": True, "code": None, "message": None, "data": {
            "sessionToken": new, "validityInSecondsST": life.session,
            "masterToken": master_token,
            "validityInSecondsMT": max(0, int(master.expires_at - time.time())),
        }})

    # --- /oauth/token (snowflake-ml utils/authentication.py; ex_spcs_token pat_gen.py) ---------------------------

    async def oauth_token(self, request: Request) -> Response:
        """Key-pair JWT or PAT exchanged for a short-lived ingress token; the answer is raw text
        (snowflake-ml ``utils/authentication.py`` reads ``response.text``)."""
        form = await _form(request)
        scope = str(form.get("scope", ""))
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            try:
                user = self.credentials.verify_keypair_jwt(str(form.get("assertion", "")),
                                                           self.settings.lifetimes.keypair_jwt_max)
            except KeyPairError as exc:
                return oauth_error("invalid_grant", str(exc))
            restriction = None
        elif grant == TOKEN_EXCHANGE:
            if form.get("subject_token_type") != PAT_TOKEN_TYPE:
                return oauth_error("invalid_request", f"subject_token_type must be {PAT_TOKEN_TYPE}.")
            pat = self.credentials.lookup(str(form.get("subject_token", "")))
            if pat is None or pat.kind is not TokenKind.PAT or pat.expired():
                return oauth_error("invalid_grant", "The programmatic access token is invalid or expired.")
            user, restriction = pat.user, pat.role
        else:
            return oauth_error("unsupported_grant_type", f"grant_type must be {JWT_BEARER} or {TOKEN_EXCHANGE}.")
        # ex_spcs_token pat_gen.py writes `session:scope:<ROLE>`, snowflake-ml `session:role:<ROLE>`; both are read
        # (inferred).
        role = parse_role_scope(scope, ("session:role:", "session:scope:")) or restriction or self.settings.role
        if restriction and role != restriction:
            return oauth_error("invalid_scope", f"The PAT is restricted to role {restriction}.")
        # Every local user holds the configured roles: the stand-in is single-tenant.
        if role not in self.settings.user_roles:
            return oauth_error("invalid_scope", f"Role {role} is not granted to user {user}.")
        # The ingress host in the scope is recorded; whether Snowflake binds the token to it is unknown (inferred).
        token = self.credentials.issue(TokenKind.EXCHANGED, user, role, self.settings.lifetimes.exchanged,
                                       scope=tuple(scope.split()))
        return PlainTextResponse(token)


async def _form(request: Request) -> dict[str, str]:
    """An x-www-form-urlencoded body (parsed here: Starlette's form parser needs the extra python-multipart)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True))
