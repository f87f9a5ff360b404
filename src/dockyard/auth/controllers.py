"""The two access controllers behind ``auth.htpasswd`` and ``auth.token``.

``BasicController``: credentials on every request (``WWW-Authenticate: Basic``); anonymous
callers get what the anonymous rules allow, and a 401 challenge for anything else; a logged-in
caller without the rights gets 403 ``DENIED``.

``TokenController``: bearer tokens from a trusted issuer, checked locally (signature, issuer,
audience, time with leeway, then every needed access item). No or a bad token: 401 with the
``Bearer realm=…,service=…,scope=…`` challenge (``error="invalid_token"`` for a bad one); a good
token lacking an action: 401 with ``error="insufficient_scope"`` (code ``DENIED`` when the token
names a user, so docker prints its "denied" message).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from cryptography import x509
from starlette.requests import Request

from dockyard.auth.access import Access, Identity, Mode, TokenIssuer
from dockyard.auth.credentials import Authenticator, parse_basic
from dockyard.auth.keys import SigningKeys
from dockyard.auth.robots import PREFIX
from dockyard.auth.rules import Policy
from dockyard.auth.tokens import ASYMMETRIC, TokenInvalid, TrustStore, allows, granted_access
from dockyard.auth.visibility import PolicyVisibility, client_address
from dockyard.config import TokenAuth
from dockyard.errors import ErrorCode, RegistryError
from dockyard.origin import request_origin

log = logging.getLogger("dockyard.auth")


def _detail(accesses: list[Access]) -> list[dict[str, str]]:
    return [{"Type": a.type, "Name": a.name, "Action": a.action} for a in accesses]


def scope_param(accesses: list[Access]) -> str:
    grouped: dict[tuple[str, str], list[str]] = {}
    for a in accesses:
        grouped.setdefault((a.type, a.name), []).append(a.action)
    return " ".join(f"{t}:{n}:{','.join(actions)}" for (t, n), actions in grouped.items())


class BasicController(PolicyVisibility):
    mode: Mode = "htpasswd"
    issuer: TokenIssuer | None = None

    def __init__(self, realm: str, authenticator: Authenticator, policy: Policy) -> None:
        super().__init__(authenticator, policy)
        self.realm = realm

    def _challenge(self, accesses: list[Access], message: str | None = None) -> RegistryError:
        realm = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        return RegistryError(
            ErrorCode.UNAUTHORIZED,
            message,
            _detail(accesses) or None,
            headers={"WWW-Authenticate": f'Basic realm="{realm}"'},
        )

    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        credentials = parse_basic(request.headers.get("authorization"))
        if credentials is None:
            who = self.policy.principal("")
            if accesses and all(self.allowed(who, a) for a in accesses):
                return Identity("")
            raise self._challenge(accesses)
        found = await self.authenticator.login(*credentials, client_address(request))
        if found is None:
            raise self._challenge(accesses)
        who = self.policy.principal(found.subject, found.robot)
        missing = [a for a in accesses if not self.allowed(who, a)]
        if missing:
            raise RegistryError(ErrorCode.DENIED, None, _detail(missing))
        return Identity(found.subject)


def load_certificates(path: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


def _fetch_jwks(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as resp:  # noqa: S310 - configured URL
            data: dict[str, Any] = json.load(resp)
            return data
    loaded: dict[str, Any] = json.loads(Path(source).read_text())
    return loaded


class TokenController(PolicyVisibility):
    mode: Mode = "token"

    def __init__(
        self,
        config: TokenAuth,
        prefix: str,
        authenticator: Authenticator,
        policy: Policy,
        keystore: SigningKeys | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (monotonic seconds) paces re-reading the signing keys (their directory, or
        their database) and the JWKS; tests pass one they can advance instead of sleeping."""
        super().__init__(authenticator, policy)
        self.config = config
        self._clock = clock
        self.prefix = "" if prefix == "/" else prefix
        self.keystore = keystore
        self.issuer = TokenIssuer(config, authenticator, policy, keystore) if keystore is not None else None
        algorithms = ASYMMETRIC & set(config.signingalgorithms or ASYMMETRIC)
        self._static = TrustStore(config.issuer, config.service, config.leeway, frozenset(algorithms))
        if config.rootcertbundle:
            for cert in load_certificates(config.rootcertbundle):
                self._static.add_certificate(cert)
        self._jwks_fetched = 0.0
        if config.jwks:
            self._load_jwks()
        self._trust: TrustStore | None = None
        self._key_stamp: object = None
        self._checked = 0.0

    def _load_jwks(self) -> None:
        assert self.config.jwks is not None
        self._jwks_fetched = self._clock()
        try:
            self._static.add_jwks(_fetch_jwks(self.config.jwks))
            self._trust = None
        except (OSError, ValueError) as exc:
            log.error("cannot load the JWKS", extra={"source": self.config.jwks, "error": str(exc)})

    async def trust(self) -> TrustStore:
        """The trusted keys: configured ones plus the built-in server's (re-read after rotation,
        at most once a second)."""
        now = self._clock()
        if self.keystore is not None and (self._trust is None or now - self._checked > 1.0):
            self._checked = now
            current = await self.keystore.stamp()
            if current != self._key_stamp or self._trust is None:
                trust = TrustStore(
                    self._static.issuer,
                    self._static.audience,
                    self._static.leeway,
                    self._static.algorithms,
                    dict(self._static.keys),
                    list(self._static.roots),
                )
                for key in (await self.keystore.load())[1]:
                    trust.add_signing_key(key)
                self._trust, self._key_stamp = trust, current
        return self._trust or self._static

    def realm(self, request: Request) -> str:
        if self.config.realm and not self.config.autoredirect:
            return self.config.realm
        # Where the client reached this server (not http.host: the realm follows the request).
        origin = request_origin(request.headers, request.url.scheme)
        if self.config.autoredirect:
            return f"{origin}/auth/token"
        return f"{origin}{self.prefix}{self.config.server.path}"

    def _challenge(
        self, request: Request, accesses: list[Access], error: str | None, code: ErrorCode
    ) -> RegistryError:
        parts = [f'realm="{self.realm(request)}"', f'service="{self.config.service}"']
        if accesses:
            parts.append(f'scope="{scope_param(accesses)}"')
        if error:
            parts.append(f'error="{error}"')
        return RegistryError(
            code, None, _detail(accesses) or None, headers={"WWW-Authenticate": "Bearer " + ",".join(parts)}
        )

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            return (await self.trust()).verify(token)
        except TokenInvalid as exc:
            stale = self._clock() - self._jwks_fetched > 30
            if self.config.jwks and "untrusted key" in str(exc) and stale:
                await anyio.to_thread.run_sync(self._load_jwks)
                return (await self.trust()).verify(token)
            raise

    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._challenge(request, accesses, None, ErrorCode.UNAUTHORIZED)
        try:
            claims = await self.verify(token.strip())
        except TokenInvalid as exc:
            log.info("invalid token", extra={"reason": str(exc)[:200], "remote": client_address(request)})
            raise self._challenge(request, accesses, "invalid_token", ErrorCode.UNAUTHORIZED) from None
        granted = granted_access(claims)
        subject = str(claims.get("sub") or "")
        robots = self.authenticator.robots
        if robots is not None and subject.startswith(PREFIX):
            # The rules ask about the robot (catalog, mounts, the UI's rights) from a snapshot:
            # a robot made on another replica must be in it (a generation check with a database).
            await robots.refresh()
        if any(not allows(granted, a) for a in accesses):
            code = ErrorCode.INSUFFICIENT_SCOPE if subject else ErrorCode.UNAUTHORIZED
            raise self._challenge(request, accesses, "insufficient_scope", code)
        return Identity(subject, granted)
