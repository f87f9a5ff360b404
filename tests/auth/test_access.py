"""Access rules through the API: htpasswd mode, the catalog, cross-repository mounts, external
issuers (rootcertbundle chain, JWKS), start-up warnings."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dockyard.auth.keys import SigningKey, generate
from dockyard.auth.scope import ResourceScope
from dockyard.auth.setup import check
from dockyard.auth.tokens import access_claims, issue
from dockyard.config import parse_config
from tests.auth.conftest import ISSUER, SERVICE, AuthApp, auth_config, bearer, get_token
from tests.auth.live import USERS

pytestmark = pytest.mark.anyio
BLOB = b"layer bytes of alice"
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


async def put_blob(
    client: httpx.AsyncClient, repo: str, auth: httpx.Auth | tuple[str, str] | None = None
) -> int:
    r = await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": DIGEST}, content=BLOB, auth=auth)
    return r.status_code


async def put_image(client: httpx.AsyncClient, repo: str, auth: tuple[str, str] | None, **kw: Any) -> None:
    for data in (BLOB, b"{}"):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = await client.post(
            f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data, auth=auth, **kw
        )
        assert r.status_code == 201, r.text
    cd = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": DIGEST, "size": len(BLOB)}
        ],
    }
    r = await client.put(
        f"/v2/{repo}/manifests/v1",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", **kw.get("headers", {})},
        auth=auth,
    )
    assert r.status_code == 201, r.text


ALICE = ("alice", USERS["alice"])
BOB = ("bob", USERS["bob"])


async def test_htpasswd_mode(make_auth_app: AuthApp) -> None:
    async with make_auth_app("htpasswd") as client:
        r = await client.get("/v2/")
        assert (r.status_code, r.headers["WWW-Authenticate"]) == (401, 'Basic realm="dockyard"')
        assert (await client.get("/v2/", auth=BOB)).status_code == 200
        assert (await client.get("/v2/", auth=("bob", "wrong"))).status_code == 401
        await put_image(client, "alice/private", ALICE)
        await put_image(client, "library/public", ALICE)
        await put_image(client, "bob/own", BOB)
        denied = await client.get("/v2/alice/private/manifests/v1", auth=BOB)
        assert (denied.status_code, denied.json()["errors"][0]["code"]) == (403, "DENIED")
        assert (await client.get("/v2/library/public/manifests/v1")).status_code == 200  # anonymous
        assert (await client.put("/v2/library/public/manifests/v2", content=b"{}")).status_code == 401
        assert (await client.delete("/v2/bob/own/manifests/v1", auth=BOB)).status_code == 202

        # The catalog lists only what the caller may pull.
        listed = (await client.get("/v2/_catalog", auth=BOB)).json()["repositories"]
        assert listed == ["bob/own", "library/public"]
        assert (await client.get("/v2/_catalog", auth=ALICE)).json()["repositories"] == [
            "alice/private",
            "bob/own",
            "library/public",
        ]
        assert (await client.get("/v2/_catalog")).json()["repositories"] == ["library/public"]
        page = await client.get("/v2/_catalog", params={"n": 1}, auth=BOB)
        assert page.json()["repositories"] == ["bob/own"] and "last=bob%2Fown" in page.headers["Link"]


async def test_mounts_need_pull_on_the_source(make_auth_app: AuthApp) -> None:
    async with make_auth_app("htpasswd") as client:
        assert await put_blob(client, "alice/private", ALICE) == 201
        # with from=: pull on the source is required
        r = await client.post(
            "/v2/bob/x/blobs/uploads/", params={"mount": DIGEST, "from": "alice/private"}, auth=BOB
        )
        assert (r.status_code, r.json()["errors"][0]["detail"][-1]["Name"]) == (403, "alice/private")
        # without from=: no mount from a repository bob cannot pull: a normal upload starts
        r = await client.post("/v2/bob/x/blobs/uploads/", params={"mount": DIGEST}, auth=BOB)
        assert r.status_code == 202
        assert (await client.head(f"/v2/bob/x/blobs/{DIGEST}", auth=BOB)).status_code == 404
        # once the blob is in a repository bob may pull, it mounts
        assert await put_blob(client, "library/base", ALICE) == 201
        r = await client.post("/v2/bob/x/blobs/uploads/", params={"mount": DIGEST}, auth=BOB)
        assert r.status_code == 201
        r = await client.post(
            "/v2/bob/y/blobs/uploads/", params={"mount": DIGEST, "from": "alice/private"}, auth=ALICE
        )
        assert r.status_code == 201


async def test_catalog_in_token_mode(make_auth_app: AuthApp) -> None:
    async with make_auth_app("token") as client:
        alice = await get_token(
            client, "alice", "repository:alice/private:pull,push", "repository:library/p:push,pull"
        )
        for repo in ("alice/private", "library/p"):
            assert await put_blob(client, repo, None) == 401
            await put_image(client, repo, None, headers=bearer(alice))
        anon = await get_token(client, None, "registry:catalog:*")
        r = await client.get("/v2/_catalog", headers=bearer(anon))
        assert r.json()["repositories"] == ["library/p"]
        admin = await get_token(client, "alice", "registry:catalog:*")
        r = await client.get("/v2/_catalog", headers=bearer(admin))
        assert r.json()["repositories"] == ["alice/private", "library/p"]
        no_scope = await get_token(client, None)
        assert (await client.get("/v2/_catalog", headers=bearer(no_scope))).status_code == 401


def _ca_and_leaf(tmp_path: Path) -> tuple[Path, SigningKey]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "external issuer CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "docker_auth")]))
        .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    bundle = tmp_path / "external-ca.pem"
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return bundle, SigningKey("leaf", leaf_key, leaf)


def _external_claims(**extra: object) -> dict[str, object]:
    scope = ResourceScope("repository", "bob/app", ("pull",))
    out = access_claims(issuer="harbor-core", audience=SERVICE, subject="bob", access=[scope], lifetime=300)
    out.update(extra)
    return out


async def test_external_issuer_rootcertbundle_chain(make_auth_app: AuthApp, tmp_path: Path) -> None:
    bundle, leaf = _ca_and_leaf(tmp_path)
    token_section = {
        "issuer": "harbor-core",
        "realm": "https://auth.example/token",
        "rootcertbundle": str(bundle),
    }
    extra = {"auth": {"token": {**token_section, "server": {"enabled": False}}}}
    async with make_auth_app("token", extra) as client:
        good = issue(leaf, _external_claims())  # x5c = [leaf], which the CA signed
        r = await client.get("/v2/bob/app/tags/list", headers=bearer(good))
        assert r.status_code == 404
        challenge = (await client.get("/v2/")).headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="https://auth.example/token"')
        other, cert = generate("ES256")  # self-signed, not under the CA
        assert (
            await client.get("/v2/", headers=bearer(issue(SigningKey("x", other, cert), _external_claims())))
        ).status_code == 401
        wrong_iss = issue(leaf, _external_claims(iss=ISSUER))
        assert (await client.get("/v2/", headers=bearer(wrong_iss))).status_code == 401
        assert (await client.get("/token")).status_code == 404  # no built-in server


async def test_external_issuer_jwks_and_libtrust_kid(make_auth_app: AuthApp, tmp_path: Path) -> None:
    key, cert = generate("RS256")
    signer = SigningKey("jwks", key, cert)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**signer.jwk(), "kid": "harbor-key-1"}]}))
    extra = {
        "auth": {
            "token": {
                "issuer": "harbor-core",
                "realm": "https://a/t",
                "jwks": str(jwks),
                "server": {"enabled": False},
            }
        }
    }
    async with make_auth_app("token", extra) as client:
        import jwt

        by_kid = jwt.encode(_external_claims(), key, algorithm="RS256", headers={"kid": "harbor-key-1"})
        assert (await client.get("/v2/bob/app/tags/list", headers=bearer(by_kid))).status_code == 404
        by_thumbprint = jwt.encode(
            _external_claims(), key, algorithm="RS256", headers={"kid": signer.thumbprint}
        )
        assert (await client.get("/v2/bob/app/tags/list", headers=bearer(by_thumbprint))).status_code == 404
        unknown = jwt.encode(_external_claims(), key, algorithm="RS256", headers={"kid": "nope"})
        assert (await client.get("/v2/", headers=bearer(unknown))).status_code == 401
    # the libtrust-style kid is what distribution 2.x emits/accepts: dockyard trusts it for bundle keys
    bundle = tmp_path / "self.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    extra = {
        "auth": {
            "token": {
                "issuer": "harbor-core",
                "realm": "https://a/t",
                "rootcertbundle": str(bundle),
                "server": {"enabled": False},
            }
        }
    }
    async with make_auth_app("token", extra) as client:
        token = issue(signer, _external_claims(), kid="libtrust")
        head = token.split(".")[0]
        import base64

        header = json.loads(base64.urlsafe_b64decode(head + "=="))
        assert header.pop("x5c") and len(header["kid"].split(":")) == 12
        stripped = jwt.encode(_external_claims(), key, algorithm="RS256", headers={"kid": header["kid"]})
        assert (await client.get("/v2/bob/app/tags/list", headers=bearer(stripped))).status_code == 404


def test_plain_http_warning(tmp_path: Path) -> None:
    public = parse_config(auth_config(tmp_path, "htpasswd", {"http": {"addr": "0.0.0.0:5000"}}))
    assert any("PLAIN HTTP" in w for w in check(public))
    loopback = parse_config(auth_config(tmp_path, "htpasswd", {"http": {"addr": "127.0.0.1:5000"}}))
    assert not any("PLAIN HTTP" in w for w in check(loopback))
    assert check(parse_config({"http": {"addr": "0.0.0.0:5000"}})) == []  # mode none: no warning
