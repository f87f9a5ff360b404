"""Tags list, catalog and referrers: pagination, Link headers, filters."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    error_codes,
    push_blob,
    push_image,
)

pytestmark = pytest.mark.anyio


async def test_tags_list_and_pagination(client: httpx.AsyncClient) -> None:
    tags = ["b", "a", "c10", "c2", "Z", "latest"]
    for tag in tags:
        await push_image(client, "t/repo", tag)
    r = await client.get("/v2/t/repo/tags/list")
    assert r.json() == {"name": "t/repo", "tags": sorted(tags)}
    assert "Link" not in r.headers
    r = await client.get("/v2/t/repo/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["Z", "a"]
    assert r.headers["Link"] == '<http://registry.test/v2/t/repo/tags/list?n=2&last=a>; rel="next"'
    r = await client.get("/v2/t/repo/tags/list", params={"n": 2, "last": "a"})
    assert r.json()["tags"] == ["b", "c10"]
    r = await client.get("/v2/t/repo/tags/list", params={"n": 10, "last": "c2"})
    assert r.json()["tags"] == ["latest"] and "Link" not in r.headers
    r = await client.get("/v2/t/repo/tags/list", params={"n": 0})
    assert r.json()["tags"] == [] and "Link" not in r.headers
    r = await client.get("/v2/t/repo/tags/list", params={"last": "zzz"})
    assert r.json()["tags"] == []


async def test_tags_list_errors(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/nothing/here/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]
    await push_image(client, "p", "x")
    for bad in ("-1", "abc", "1.5"):
        r = await client.get("/v2/p/tags/list", params={"n": bad})
        assert r.status_code == 400 and error_codes(r) == ["PAGINATION_NUMBER_INVALID"], bad


async def test_catalog(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/_catalog")).json() == {"repositories": []}
    names = ["zeta", "alpha/one", "alpha/two", "alpha", "a-b", "mid/deep/er"]
    for name in names:
        await push_image(client, name, "latest")
    await push_blob(client, "blobonly", b"x")  # no manifests: not a repository yet
    r = await client.get("/v2/_catalog")
    assert r.json()["repositories"] == sorted(names)
    r = await client.get("/v2/_catalog", params={"n": 2})
    page = r.json()["repositories"]
    assert page == sorted(names)[:2]
    assert r.headers["Link"] == f'<http://registry.test/v2/_catalog?n=2&last={page[-1]}>; rel="next"'
    seen = list(page)
    while "Link" in r.headers:
        nxt = r.headers["Link"].split(";")[0].strip("<>")
        r = await client.get(nxt)
        seen += r.json()["repositories"]
    assert seen == sorted(names)
    r = await client.get("/v2/_catalog", params={"n": "x"})
    assert r.status_code == 400 and error_codes(r) == ["PAGINATION_NUMBER_INVALID"]


async def _push_referrer(
    client: httpx.AsyncClient, name: str, subject: str, subject_size: int, artifact_type: str, seed: str
) -> str:
    empty = b"{}"
    await push_blob(client, name, empty)
    layer = await push_blob(client, name, seed.encode())
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": descriptor("application/vnd.oci.empty.v1+json", empty),
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": len(seed)}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
            "annotations": {"seed": seed},
        }
    ).encode()
    r = await client.put(
        f"/v2/{name}/manifests/{digest_of(body)}", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == subject
    return digest_of(body)


async def test_referrers(client: httpx.AsyncClient) -> None:
    subject, body = await push_image(client, "ref", "v1")
    sig = await _push_referrer(client, "ref", subject, len(body), "application/vnd.example.signature", "sig")
    sbom = await _push_referrer(client, "ref", subject, len(body), "application/spdx+json", "sbom")
    r = await client.get(f"/v2/ref/referrers/{subject}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    found = {m["digest"]: m for m in index["manifests"]}
    assert set(found) == {sig, sbom}
    assert found[sig]["artifactType"] == "application/vnd.example.signature"
    assert found[sig]["annotations"] == {"seed": "sig"}
    assert found[sig]["mediaType"] == OCI_MANIFEST
    r = await client.get(f"/v2/ref/referrers/{subject}", params={"artifactType": "application/spdx+json"})
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sbom]
    # Deleting a referrer removes it from the list.
    assert (await client.delete(f"/v2/ref/manifests/{sig}")).status_code == 202
    r = await client.get(f"/v2/ref/referrers/{subject}")
    assert [m["digest"] for m in r.json()["manifests"]] == [sbom]


async def test_referrers_to_missing_subject_and_unknown_digest(client: httpx.AsyncClient) -> None:
    missing = digest_of(b"subject pushed later")
    ref = await _push_referrer(client, "ref", missing, 10, "application/x", "early")
    r = await client.get(f"/v2/ref/referrers/{missing}")
    assert [m["digest"] for m in r.json()["manifests"]] == [ref]
    r = await client.get(f"/v2/ref/referrers/{digest_of(b'none')}")
    assert r.status_code == 200 and r.json()["manifests"] == []
    r = await client.get("/v2/ref/referrers/sha256:bad")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
