"""The built-in token server (Docker Registry token authentication), mounted before the API.

``GET <path>?service=&scope=…&scope=…&account=&offline_token=&client_id=`` with Basic credentials
or anonymously; ``POST <path>`` with the OAuth2 form (``grant_type=password`` or
``refresh_token``, ``client_id``, ``access_type=offline``); ``GET <path>/jwks.json`` (public keys)
and ``GET <path>/certs.pem`` (the certificate bundle for distribution's ``rootcertbundle``).
The token grants the intersection of the requested scopes and the access rules.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api.errors import error_response, to_api_error
from dockyard.auth.access import TokenIssuer
from dockyard.auth.credentials import Authenticated, parse_basic
from dockyard.auth.scope import ResourceScope, ScopeError, format_scopes, parse_scopes
from dockyard.auth.tokens import REFRESH_TYP, TokenInvalid, TrustStore, access_claims, issue
from dockyard.auth.visibility import client_address
from dockyard.errors import DomainError, ErrorCode, RegistryError

MAX_FORM = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status, NO_STORE)


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenServer:
    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer
        self.config = issuer.config
        self.server = issuer.config.server
        self.keystore = issuer.keystore
        self.refresh_audience = f"{self.config.issuer}:refresh"

    def _unauthorized(self) -> RegistryError:
        return RegistryError(
            ErrorCode.UNAUTHORIZED,
            "invalid username, password or token",
            headers={"WWW-Authenticate": f'Basic realm="{self.config.service}"', **NO_STORE},
        )

    def _check_service(self, service: str | None) -> Response | None:
        if service and service != self.config.service:
            return _oauth_error(
                "invalid_request", f"this token server issues tokens for {self.config.service!r}"
            )
        return None

    def _grant(self, who: Authenticated | None, scopes: list[ResourceScope]) -> list[ResourceScope]:
        policy = self.issuer.policy
        principal = policy.principal(who.subject, who.robot) if who else policy.principal("")
        return policy.grant(principal, scopes)

    async def _tokens(
        self, who: Authenticated | None, granted: list[ResourceScope], offline: bool, client_id: str
    ) -> dict[str, Any]:
        signer, _ = await self.keystore.load()
        now = time.time()
        claims = access_claims(
            issuer=self.config.issuer,
            audience=self.config.service,
            subject=who.subject if who else "",
            access=granted,
            lifetime=self.server.expiration,
            now=now,
        )
        token = issue(signer, claims, kid=self.server.kid)
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": int(self.server.expiration),
            "issued_at": _rfc3339(now),
        }
        if offline and who is not None:
            refresh = {
                "iss": self.config.issuer,
                "sub": who.subject,
                "aud": self.refresh_audience,
                "exp": int(now + self.server.refreshexpiration),
                "nbf": int(now),
                "iat": int(now),
                "jti": uuid.uuid4().hex,
                "cred": who.fingerprint,
                "client_id": client_id[:200],
            }
            body["refresh_token"] = issue(signer, refresh, kid=self.server.kid, typ=REFRESH_TYP)
        return body

    async def _refresh_trust(self) -> TrustStore:
        trust = TrustStore(self.config.issuer, self.refresh_audience, self.config.leeway)
        for key in (await self.keystore.load())[1]:
            trust.add_signing_key(key)
        return trust

    async def get(self, request: Request) -> Response:
        query = request.query_params
        bad = self._check_service(query.get("service"))
        if bad is not None:
            return bad
        try:
            scopes = parse_scopes(query.getlist("scope"))
        except ScopeError as exc:
            return _oauth_error("invalid_scope", str(exc))
        who = None
        credentials = parse_basic(request.headers.get("authorization"))
        if credentials is not None:
            who = await self.issuer.authenticator.login(*credentials, client_address(request))
            if who is None:
                raise self._unauthorized()
        offline = query.get("offline_token", "").lower() == "true"
        body = await self._tokens(who, self._grant(who, scopes), offline, query.get("client_id", ""))
        return JSONResponse(body, headers=NO_STORE)

    async def post(self, request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return _oauth_error("invalid_request", "the form is too large")
        fields = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        bad = self._check_service(fields.get("service"))
        if bad is not None:
            return bad
        client_id = fields.get("client_id", "")
        if not client_id:
            return _oauth_error("invalid_request", "client_id is required")
        try:
            scopes = parse_scopes([fields.get("scope", "")])
        except ScopeError as exc:
            return _oauth_error("invalid_scope", str(exc))
        grant_type = fields.get("grant_type")
        offline = fields.get("access_type") == "offline"
        if grant_type == "password":
            who = await self.issuer.authenticator.login(
                fields.get("username", ""), fields.get("password", ""), client_address(request)
            )
        elif grant_type == "refresh_token":
            who = await self._from_refresh(fields.get("refresh_token", ""))
            offline = True
        else:
            return _oauth_error("unsupported_grant_type", "grant_type must be password or refresh_token")
        if who is None:
            raise self._unauthorized()
        granted = self._grant(who, scopes)
        answer = await self._tokens(who, granted, offline, client_id)
        answer["scope"] = format_scopes(granted)
        return JSONResponse(answer, headers=NO_STORE)

    async def _from_refresh(self, token: str) -> Authenticated | None:
        try:
            claims = (await self._refresh_trust()).verify(
                token, typ=REFRESH_TYP, audience=self.refresh_audience
            )
        except TokenInvalid:
            return None
        subject, cred = claims.get("sub"), claims.get("cred")
        if not isinstance(subject, str) or not subject or not isinstance(cred, str):
            return None
        return await self.issuer.authenticator.still_valid(subject, cred)

    async def jwks(self) -> Response:
        _, keys = await self.keystore.load()
        return JSONResponse({"keys": [k.jwk() for k in keys]}, headers={"Cache-Control": "max-age=60"})

    async def certs(self) -> Response:
        return Response(await self.keystore.bundle(), media_type="application/x-pem-file")


class TokenServerApp:
    """ASGI: the token endpoints at ``<prefix><path>``, everything else to the wrapped app."""

    def __init__(self, app: ASGIApp, server: TokenServer, prefix: str) -> None:
        self.app = app
        self.server = server
        base = ("" if prefix == "/" else prefix) + server.server.path
        self.paths = {base: "token", base + "/jwks.json": "jwks", base + "/certs.pem": "certs"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.paths.get(scope["path"]) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        method = request.method
        try:
            if kind == "token" and method == "GET":
                response = await self.server.get(request)
            elif kind == "token" and method == "POST":
                response = await self.server.post(request)
            elif kind == "jwks" and method in ("GET", "HEAD"):
                response = await self.server.jwks()
            elif kind == "certs" and method in ("GET", "HEAD"):
                response = await self.server.certs()
            else:
                raise RegistryError(ErrorCode.METHOD_UNKNOWN, headers={"Allow": "GET, POST"})
        except RegistryError as exc:
            response = error_response(exc)
        except DomainError as exc:  # Throttled
            response = error_response(to_api_error(exc))
        await response(scope, receive, send)
