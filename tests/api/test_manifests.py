"""Manifest PUT/GET/HEAD/DELETE for every supported type, and the validation errors."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    error_codes,
    push_blob,
    push_image,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
async def test_push_and_pull_image_manifest(client: httpx.AsyncClient, media_type: str) -> None:
    digest, body = await push_image(client, "lib/app", "v1", media_type=media_type)
    for ref in ("v1", digest):
        r = await client.get(f"/v2/lib/app/manifests/{ref}", headers={"Accept": media_type})
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["Content-Type"] == media_type
        assert r.headers["Docker-Content-Digest"] == digest
        h = await client.head(f"/v2/lib/app/manifests/{ref}")
        assert h.status_code == 200 and h.content == b""
        assert h.headers["Content-Length"] == str(len(body))
        assert h.headers["Docker-Content-Digest"] == digest


async def test_put_location_and_etag(client: httpx.AsyncClient) -> None:
    config = json.dumps({"x": 1}).encode()
    await push_blob(client, "x", config)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [],
        }
    ).encode()
    r = await client.put("/v2/x/manifests/latest", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201
    digest = digest_of(body)
    assert r.headers["Location"] == f"http://registry.test/v2/x/manifests/{digest}"
    r = await client.get("/v2/x/manifests/latest", headers={"If-None-Match": f'"{digest}"'})
    assert r.status_code == 304


@pytest.mark.parametrize("index_type", [OCI_INDEX, DOCKER_LIST])
async def test_index_requires_its_children(client: httpx.AsyncClient, index_type: str) -> None:
    child_type = OCI_MANIFEST if index_type == OCI_INDEX else DOCKER_MANIFEST
    amd, amd_body = await push_image(client, "multi", None, seed="amd", media_type=child_type)
    arm, arm_body = await push_image(client, "multi", None, seed="arm", media_type=child_type)
    index = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [
            descriptor(child_type, amd_body, platform={"architecture": "amd64", "os": "linux"}),
            descriptor(child_type, arm_body, platform={"architecture": "arm64", "os": "linux"}),
        ],
    }
    body = json.dumps(index).encode()
    r = await client.put("/v2/multi/manifests/latest", content=body, headers={"Content-Type": index_type})
    assert r.status_code == 201, r.text
    r = await client.get("/v2/multi/manifests/latest")
    assert r.content == body and r.headers["Content-Type"] == index_type
    # The same index in a repository without the children is refused, one error per child.
    r = await client.put("/v2/lonely/manifests/latest", content=body, headers={"Content-Type": index_type})
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    assert {e["detail"] for e in r.json()["errors"]} == {amd, arm}


async def test_missing_config_and_layers_are_reported(client: httpx.AsyncClient) -> None:
    config, layer = b'{"a":1}', b"layer bytes"
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    ).encode()
    r = await client.put("/v2/m/manifests/t", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    assert (await client.get("/v2/m/manifests/t")).status_code == 404


async def test_foreign_layers_with_urls_need_no_blob(client: httpx.AsyncClient) -> None:
    config = b'{"os":"windows"}'
    await push_blob(client, "win", config)
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": digest_of(b"foreign"),
        "size": 7,
        "urls": ["https://example.invalid/layer"],
    }
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor("application/vnd.docker.container.image.v1+json", config),
            "layers": [foreign],
        }
    ).encode()
    r = await client.put("/v2/win/manifests/t", content=body, headers={"Content-Type": DOCKER_MANIFEST})
    assert r.status_code == 201, r.text


async def test_schema1_is_refused_with_a_reason(client: httpx.AsyncClient) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "x", "tag": "t", "fsLayers": [], "history": []}).encode()
    for ct in ("application/vnd.docker.distribution.manifest.v1+prettyjws", "application/json"):
        r = await client.put("/v2/old/manifests/t", content=body, headers={"Content-Type": ct})
        assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]
        assert "schema1" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"{not json", OCI_MANIFEST, "not valid JSON"),
        (b"[]", OCI_MANIFEST, "JSON object"),
        (
            json.dumps({"schemaVersion": 3, "config": {}, "layers": []}).encode(),
            OCI_MANIFEST,
            "schemaVersion",
        ),
        (
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(),
            OCI_MANIFEST,
            "does not match",
        ),
        (
            json.dumps({"schemaVersion": 2, "manifests": [], "config": {}}).encode(),
            OCI_INDEX,
            "must not have config",
        ),
        (json.dumps({"schemaVersion": 2, "layers": []}).encode(), OCI_MANIFEST, "config descriptor"),
        (
            json.dumps(
                {"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:zz", "size": 1}}
            ).encode(),
            OCI_MANIFEST,
            "config.digest",
        ),
        (
            json.dumps(
                {"schemaVersion": 2, "config": {"mediaType": "x", "digest": digest_of(b""), "size": -1}}
            ).encode(),
            OCI_MANIFEST,
            "size",
        ),
        (b"{}", "text/plain", "unsupported manifest media type"),
    ],
)
async def test_invalid_manifests(
    client: httpx.AsyncClient, body: bytes, content_type: str, fragment: str
) -> None:
    r = await client.put("/v2/bad/manifests/t", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_INVALID"]
    assert fragment in r.json()["errors"][0]["message"]


async def test_oversized_manifest_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    r = await client.put("/v2/big/manifests/t", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 413
    assert error_codes(r) == ["MANIFEST_INVALID"]


async def test_put_by_digest(client: httpx.AsyncClient) -> None:
    digest, body = await push_image(client, "bydigest", None)
    r = await client.get(f"/v2/bydigest/manifests/{digest}")
    assert r.content == body
    assert (await client.get("/v2/bydigest/tags/list")).json()["tags"] == []
    wrong = digest_of(b"other")
    r = await client.put(
        f"/v2/bydigest/manifests/{wrong}", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


async def test_invalid_tag_and_reference(client: httpx.AsyncClient) -> None:
    _, body = await push_image(client, "refs", "ok")
    r = await client.put("/v2/refs/manifests/-bad", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]
    r = await client.put(
        "/v2/refs/manifests/" + "t" * 129, content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]
    # Reads of a reference that can name nothing are 404 (as the OCI conformance suite expects).
    r = await client.get("/v2/refs/manifests/.INVALID_MANIFEST_NAME")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = await client.get("/v2/refs/manifests/sha256:totallywrong")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = await client.get("/v2/refs/manifests/missing")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]


async def test_retag_points_tag_at_new_manifest(client: httpx.AsyncClient) -> None:
    first, _ = await push_image(client, "re", "latest", seed="1")
    second, body = await push_image(client, "re", "latest", seed="2")
    r = await client.get("/v2/re/manifests/latest")
    assert r.headers["Docker-Content-Digest"] == second and r.content == body
    assert (await client.get(f"/v2/re/manifests/{first}")).status_code == 200


async def test_delete_tag_keeps_manifest(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "del", "a")
    await push_image(client, "del", "b")  # same content → same digest, two tags
    assert (await client.delete("/v2/del/manifests/a")).status_code == 202
    assert (await client.get("/v2/del/manifests/a")).status_code == 404
    assert (await client.get("/v2/del/manifests/b")).status_code == 200
    assert (await client.get(f"/v2/del/manifests/{digest}")).status_code == 200
    r = await client.delete("/v2/del/manifests/a")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]


async def test_delete_digest_removes_every_tag(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "del", "a")
    await push_image(client, "del", "b")
    other, _ = await push_image(client, "del", "c", seed="other")
    assert (await client.delete(f"/v2/del/manifests/{digest}")).status_code == 202
    for ref in ("a", "b", digest):
        assert (await client.get(f"/v2/del/manifests/{ref}")).status_code == 404
    assert (await client.get("/v2/del/tags/list")).json()["tags"] == ["c"]
    assert (await client.get(f"/v2/del/manifests/{other}")).status_code == 200
    r = await client.delete(f"/v2/del/manifests/{digest}")
    assert r.status_code == 404


async def test_artifact_with_empty_config_and_unknown_fields(client: httpx.AsyncClient) -> None:
    empty = b"{}"
    await push_blob(client, "art", empty)
    blob = await push_blob(client, "art", b"sbom document")
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": {
                **descriptor("application/vnd.oci.empty.v1+json", empty),
                "data": "e30=",
                "unknownField": 1,
            },
            "layers": [{"mediaType": "application/spdx+json", "digest": blob, "size": 13}],
            "annotations": {"org.example": "yes"},
        }
    ).encode()
    r = await client.put("/v2/art/manifests/sbom", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
