"""JWT access and refresh tokens: issuing (with headers both distribution generations accept) and
verifying (our own keys, an ``x5c`` chain to ``rootcertbundle``, a JWKS ``kid``, or a trusted ``jwk``).

Issued headers carry ``x5c`` (the signer's certificate, checked against distribution's
``rootcertbundle`` by 2.x and 3.x alike) and a ``kid`` (the RFC 7638 thumbprint, the JWKS id; or
the libtrust id on request). Verification accepts only asymmetric algorithms: ``none`` and the
HMAC family never pass, whatever key material a token points at.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import itertools
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography import x509

from dockyard.auth.access import Access
from dockyard.auth.keys import SigningKey, jwk_thumbprint, libtrust_kid
from dockyard.auth.scope import ResourceScope

ASYMMETRIC = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
ACCESS_TYP = "JWT"
REFRESH_TYP = "dockyard-refresh+jwt"
Granted = frozenset[tuple[str, str, str]]


class TokenInvalid(Exception):
    """Why a token was refused (for logs and tests; clients only see ``invalid_token``)."""


def issue(
    signer: SigningKey,
    claims: dict[str, Any],
    *,
    kid: Literal["thumbprint", "libtrust"] = "thumbprint",
    typ: str = ACCESS_TYP,
) -> str:
    headers = {
        "typ": typ,
        "kid": signer.thumbprint if kid == "thumbprint" else signer.libtrust_kid,
        "x5c": signer.x5c,
    }
    return jwt.encode(claims, signer.private_key, algorithm=signer.algorithm, headers=headers)


def access_claims(
    *,
    issuer: str,
    audience: str,
    subject: str,
    access: Iterable[ResourceScope],
    lifetime: float,
    now: float | None = None,
) -> dict[str, Any]:
    now = int(time.time() if now is None else now)
    return {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": now + int(lifetime),
        "nbf": now,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": [scope.claim() for scope in access],
    }


def granted_access(claims: dict[str, Any]) -> Granted:
    """The ``access`` claim as (type, name, action) triples; ``repository(plugin)`` → ``repository``."""
    out: set[tuple[str, str, str]] = set()
    entries = claims.get("access") or []
    if not isinstance(entries, list):
        raise TokenInvalid("the access claim is not a list")
    for entry in entries:
        if not isinstance(entry, dict):
            raise TokenInvalid("an access entry is not an object")
        rtype, name, actions = entry.get("type"), entry.get("name"), entry.get("actions") or []
        if not isinstance(rtype, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise TokenInvalid("an access entry is malformed")
        rtype = rtype.split("(", 1)[0]
        out.update((rtype, name, a) for a in actions if isinstance(a, str))
    return frozenset(out)


def allows(granted: Granted, access: Access) -> bool:
    return (access.type, access.name, access.action) in granted or (
        access.type,
        access.name,
        "*",
    ) in granted


def _b64(data: str) -> bytes:
    return base64.b64decode(data, validate=True)


@dataclass
class TrustStore:
    """What the registry trusts: keys by id and root certificates for ``x5c`` chains."""

    issuer: str
    audience: str
    leeway: float = 60.0
    algorithms: frozenset[str] = ASYMMETRIC
    keys: dict[str, Any] = field(default_factory=dict)
    roots: list[x509.Certificate] = field(default_factory=list)

    def add_certificate(self, cert: x509.Certificate) -> None:
        self.roots.append(cert)
        key = cert.public_key()
        self.keys[jwk_thumbprint(key)] = key
        self.keys[libtrust_kid(key)] = key

    def add_signing_key(self, key: SigningKey) -> None:
        self.add_certificate(key.certificate)

    def add_jwks(self, document: dict[str, Any]) -> None:
        for entry in document.get("keys", []):
            try:
                jwk = jwt.PyJWK(entry)
            except (jwt.PyJWTError, ValueError, KeyError):
                continue
            if jwk.key_type not in ("EC", "RSA", "OKP"):
                continue  # never a symmetric key
            key = jwk.key
            if entry.get("kid"):
                self.keys[str(entry["kid"])] = key
            with contextlib.suppress(TypeError):
                self.keys[jwk_thumbprint(key)] = key

    def _chain_key(self, x5c: Any, now: datetime.datetime) -> Any:
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise TokenInvalid("malformed x5c header")
        try:
            chain = [x509.load_der_x509_certificate(_b64(c)) for c in x5c]
        except ValueError:
            raise TokenInvalid("malformed x5c certificate") from None
        for cert in chain:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise TokenInvalid("an x5c certificate is outside its validity period")
        for child, parent in itertools.pairwise(chain):
            try:
                child.verify_directly_issued_by(parent)
            except (ValueError, TypeError, Exception):
                raise TokenInvalid("the x5c chain is broken") from None
        last = chain[-1]
        if last not in self.roots:
            for root in self.roots:
                try:
                    last.verify_directly_issued_by(root)
                    break
                except Exception:  # noqa: S112 - try the next root
                    continue
            else:
                raise TokenInvalid("the x5c chain does not lead to a trusted root")
        return chain[0].public_key()

    def signing_key(self, header: dict[str, Any]) -> Any:
        if "x5c" in header:
            return self._chain_key(header["x5c"], datetime.datetime.now(datetime.UTC))
        if "jwk" in header:
            try:
                presented = jwt.PyJWK(header["jwk"]).key
                key = self.keys.get(jwk_thumbprint(presented))
            except (jwt.PyJWTError, ValueError, KeyError, TypeError):
                raise TokenInvalid("malformed jwk header") from None
            if key is None:
                raise TokenInvalid("token signed by an untrusted jwk")
            return key
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self.keys:
            return self.keys[kid]
        raise TokenInvalid(f"token signed by untrusted key with ID {str(kid)[:80]!r}")

    def verify(self, token: str, *, typ: str = ACCESS_TYP, audience: str | None = None) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("malformed token") from None
        alg = header.get("alg")
        if alg not in self.algorithms or alg not in ASYMMETRIC:
            raise TokenInvalid(f"signing algorithm {str(alg)[:20]!r} is not accepted")
        if header.get("typ", ACCESS_TYP) not in (typ, "jwt" if typ == ACCESS_TYP else typ):
            raise TokenInvalid("wrong token type")
        key = self.signing_key(header)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience or self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"{type(exc).__name__}: {exc}") from None
        granted_access(claims)  # malformed access claims are invalid tokens
        return claims
