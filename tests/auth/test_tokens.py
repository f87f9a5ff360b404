"""Token mode, in process: what the registry does with good and bad tokens, and the token server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from dockyard.auth.keys import KeyStore, SigningKey, generate
from dockyard.auth.scope import ResourceScope
from dockyard.auth.tokens import access_claims, issue
from tests.auth.conftest import ISSUER, SERVICE, AuthApp, bearer, get_token
from tests.auth.live import USERS

pytestmark = pytest.mark.anyio
PULL_BOB = [ResourceScope("repository", "bob/app", ("pull",))]


def signer(auth_dir: Path) -> SigningKey:
    return KeyStore(auth_dir / "keys", retain=3600).load()[0]


def claims(**overrides: Any) -> dict[str, Any]:
    base = access_claims(issuer=ISSUER, audience=SERVICE, subject="bob", access=PULL_BOB, lifetime=300)
    base.update(overrides)
    return base


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def status(client: httpx.AsyncClient, token: str) -> tuple[int, str]:
    r = await client.get("/v2/bob/app/tags/list", headers=bearer(token))
    return r.status_code, r.headers.get("WWW-Authenticate", "")


async def test_good_token_and_challenges(make_auth_app: AuthApp, auth_dir: Path) -> None:
    async with make_auth_app() as client:
        r = await client.get("/v2/")
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == f'Bearer realm="http://{SERVICE}/token",service="{SERVICE}"'
        two_proxies = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "reg.example, edge.internal"}
        r = await client.get("/v2/", headers=two_proxies)  # the realm names the client-facing hop
        assert r.headers["WWW-Authenticate"].startswith('Bearer realm="https://reg.example/token",')
        good = issue(signer(auth_dir), claims())
        assert await status(client, good) == (404, "")  # authorized; the repository is empty
        leeway = issue(signer(auth_dir), claims(exp=int(time.time()) - 30))
        assert (await status(client, leeway))[0] == 404  # within the 60 s leeway


BAD_TOKENS = [
    "expired",
    "not-yet-valid",
    "tampered-signature",
    "tampered-claims",
    "wrong-audience",
    "wrong-issuer",
    "alg-none",
    "hs256-with-public-key",
    "untrusted-key",
    "refresh-token-as-access-token",
    "garbage",
]


def bad_token(kind: str, key: SigningKey, refresh: str) -> str:
    now = int(time.time())
    if kind == "expired":
        return issue(key, claims(exp=now - 120, iat=now - 420, nbf=now - 420))
    if kind == "not-yet-valid":
        return issue(key, claims(nbf=now + 600, iat=now + 600, exp=now + 900))
    if kind == "tampered-signature":
        head, body, sig = issue(key, claims()).split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
        raw[5] ^= 0xFF
        return f"{head}.{body}.{b64(bytes(raw))}"
    if kind == "tampered-claims":
        head, _, sig = issue(key, claims()).split(".")
        more = claims(access=[{"type": "repository", "name": "bob/app", "actions": ["pull", "delete"]}])
        return f"{head}.{b64(json.dumps(more).encode())}.{sig}"
    if kind == "wrong-audience":
        return issue(key, claims(aud="another-registry"))
    if kind == "wrong-issuer":
        return issue(key, claims(iss="evil-issuer"))
    if kind == "alg-none":
        head = {"alg": "none", "typ": "JWT", "kid": key.thumbprint}
        return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims()).encode())}."
    if kind == "hs256-with-public-key":
        pem = key.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        head = {"alg": "HS256", "typ": "JWT", "kid": key.thumbprint}
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims()).encode())}"
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"
    if kind == "untrusted-key":
        other, cert = generate("ES256")
        return issue(SigningKey("other", other, cert), claims())
    if kind == "refresh-token-as-access-token":
        return refresh
    return "not.a.token"


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_bad_tokens_are_refused(make_auth_app: AuthApp, auth_dir: Path, kind: str) -> None:
    async with make_auth_app() as client:
        r = await client.get(
            "/token",
            params={"service": SERVICE, "offline_token": "true", "client_id": "t"},
            auth=("bob", USERS["bob"]),
        )
        token = bad_token(kind, signer(auth_dir), r.json()["refresh_token"])
        code, challenge = await status(client, token)
        assert code == 401
        assert 'error="invalid_token"' in challenge
        assert 'scope="repository:bob/app:pull"' in challenge


async def test_scope_the_user_may_not_touch(make_auth_app: AuthApp) -> None:
    async with make_auth_app() as client:
        token = await get_token(
            client, "bob", "repository:alice/secret:pull,push", "repository:bob/app:pull,delete"
        )
        claims = jwt.decode(token, options={"verify_signature": False})
        # The intersection of asked and allowed: nothing on alice/*, bob's own actions on bob/*.
        assert claims["access"] == [{"type": "repository", "name": "bob/app", "actions": ["pull", "delete"]}]
        r = await client.get("/v2/alice/secret/tags/list", headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "DENIED"
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        anonymous = await get_token(client, None, "repository:bob/app:pull", "repository:library/x:pull,push")
        assert jwt.decode(anonymous, options={"verify_signature": False})["access"] == [
            {"type": "repository", "name": "library/x", "actions": ["pull"]}
        ]
        anon = await client.get("/v2/bob/app/tags/list", headers=bearer(anonymous))
        assert anon.status_code == 401 and anon.json()["errors"][0]["code"] == "UNAUTHORIZED"


async def test_token_response_and_claims(make_auth_app: AuthApp, auth_dir: Path) -> None:
    async with make_auth_app() as client:
        r = await client.get(
            "/token",
            params={
                "service": SERVICE,
                "scope": "repository:bob/app:pull",
                "account": "bob",
                "offline_token": "true",
                "client_id": "docker",
            },
            auth=("bob", USERS["bob"]),
        )
        body = r.json()
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
        assert set(body) == {"token", "access_token", "expires_in", "issued_at", "refresh_token"}
        assert body["token"] == body["access_token"] and body["expires_in"] == 300
        header = jwt.get_unverified_header(body["token"])
        assert header["alg"] == "ES256" and header["typ"] == "JWT"
        key = signer(auth_dir)
        assert header["kid"] == key.thumbprint and header["x5c"] == key.x5c
        jwks = (await client.get("/token/jwks.json")).json()
        assert [k["kid"] for k in jwks["keys"]] == [key.thumbprint]
        decoded = jwt.decode(
            body["token"], key.public_key, algorithms=["ES256"], audience=SERVICE, issuer=ISSUER
        )
        assert {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} <= set(decoded)
        assert (await client.get("/token/certs.pem")).text.startswith("-----BEGIN CERTIFICATE-----")
        assert stat.S_IMODE((auth_dir / "keys" / f"{key.name}.key").stat().st_mode) == 0o600


async def test_oauth_post_and_refresh_revocation(make_auth_app: AuthApp, auth_dir: Path) -> None:
    from dockyard.auth.robots import RobotStore

    robots = RobotStore(auth_dir / "robots.json")
    _, secret = await robots.create("ci", ["bob/**"], ["pull", "push"], 3600)
    assert secret not in (auth_dir / "robots.json").read_text()
    async with make_auth_app() as client:
        form = {
            "grant_type": "password",
            "username": "robot$ci",
            "password": secret,
            "service": SERVICE,
            "client_id": "tests",
            "access_type": "offline",
            "scope": "repository:bob/app:pull,push repository:alice/x:pull",
        }
        r = await client.post("/token", data=form)
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == "repository:bob/app:pull,push"
        refresh = r.json()["refresh_token"]
        again = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": SERVICE,
            "client_id": "tests",
        }
        assert (
            await client.post("/token", data={**again, "scope": "repository:bob/app:pull"})
        ).status_code == 200
        assert (await client.post("/token", data={**form, "client_id": ""})).status_code == 400
        assert (await client.post("/token", data={**form, "grant_type": "implicit"})).json()["error"] == (
            "unsupported_grant_type"
        )
        await robots.revoke("ci")
        assert (await client.post("/token", data=again)).status_code == 401  # refresh after revocation
        assert (await client.post("/token", data=form)).status_code == 401  # the token itself too

        # A user's refresh token dies with a password change.
        user_form = {**form, "username": "bob", "password": USERS["bob"]}
        user_refresh = (await client.post("/token", data=user_form)).json()["refresh_token"]
        from dockyard.auth.htpasswd import HtpasswdFile

        HtpasswdFile(auth_dir / "htpasswd").set_password("bob", "new-password", cost=4, create=False)
        r = await client.post("/token", data={**again, "refresh_token": user_refresh})
        assert r.status_code == 401


async def test_bad_requests_to_the_token_server(make_auth_app: AuthApp) -> None:
    async with make_auth_app() as client:
        for scope in ("repository:../../etc/passwd:pull", "repository:a/../b:pull", "repository:a:pu$h"):
            r = await client.get("/token", params={"service": SERVICE, "scope": scope})
            assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")
        r = await client.get("/token", params={"service": "other-registry"})
        assert r.status_code == 400
        r = await client.delete("/token")
        assert r.status_code == 405


async def test_no_user_enumeration_and_throttling(make_auth_app: AuthApp) -> None:
    async with make_auth_app() as client:
        wrong = await client.get("/token", auth=("bob", "wrong"))
        unknown = await client.get("/token", auth=("nobody", "wrong"))
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.content == unknown.content
        assert wrong.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]
        await client.get("/token", auth=("bob", "wrong-again"))
        # three failures from this address: locked out, even with the right password
        blocked = await client.get("/token", auth=("bob", USERS["bob"]))
        assert blocked.status_code == 429
        assert blocked.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert 0 < int(blocked.headers["Retry-After"]) <= 30


async def test_key_rotation_keeps_old_tokens_valid(make_auth_app: AuthApp, auth_dir: Path) -> None:
    now = [1000.0]
    async with make_auth_app(clock=lambda: now[0]) as client:
        old_token = await get_token(client, "bob", "repository:bob/app:pull")
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        assert (await status(client, old_token))[0] == 404  # the controller now holds the keys
        store = KeyStore(auth_dir / "keys", retain=3600)
        store.rotate("RS256")
        new_token = await get_token(client, "bob", "repository:bob/app:pull")
        # The controller re-reads the key directory at most once a second: until then the new
        # key is not trusted yet; a second later it is.
        assert (await status(client, new_token))[0] == 401
        now[0] += 1.1
        new_token = await get_token(client, "bob", "repository:bob/app:pull")
        header = jwt.get_unverified_header(new_token)
        assert header["alg"] == "RS256" and header["kid"] != old_kid
        assert (await status(client, old_token))[0] == 404
        assert (await status(client, new_token))[0] == 404
        kids = {k["kid"] for k in (await client.get("/token/jwks.json")).json()["keys"]}
        assert kids == {old_kid, header["kid"]}
