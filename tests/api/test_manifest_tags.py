"""``PUT /v2/<name>/manifests/<digest>?tag=…`` (distribution-spec main, end-7) and sha512 manifests.

Mirrors the spec main conformance cases: a push by digest with ``tag`` parameters creates each tag
and answers one ``OCI-Tag`` per tag; at least 10 per request, 414 past the limit; a tag made this
way resolves to exactly the digest it was pushed under, sha256 or sha512; and a sha512 image and
index can be deleted by their sha512 digests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.api.manifests import MAX_TAGS_PER_PUSH
from dockyard.app import create_services
from dockyard.config import parse_config
from tests.api.helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    digest_of,
    error_codes,
    push_image,
)

pytestmark = pytest.mark.anyio


def sha512_of(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


async def push_blob512(client: httpx.AsyncClient, name: str, data: bytes) -> dict[str, Any]:
    digest = sha512_of(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    return {"digest": digest, "size": len(data)}


async def image512(client: httpx.AsyncClient, name: str, seed: str) -> bytes:
    """An OCI image whose config and layer are addressed by sha512 (conformance's sha512 data);
    returns the manifest bytes (not pushed)."""
    config = await push_blob512(client, name, json.dumps({"os": "linux", "architecture": seed}).encode())
    layer = await push_blob512(client, name, f"sha512 layer {seed}".encode() * 8)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config},
        "layers": [{"mediaType": OCI_LAYER, **layer}],
    }
    return json.dumps(manifest).encode()


async def put(
    client: httpx.AsyncClient,
    name: str,
    reference: str,
    body: bytes,
    tags: list[str],
    media_type: str = OCI_MANIFEST,
) -> httpx.Response:
    return await client.put(
        f"/v2/{name}/manifests/{reference}",
        params=[("tag", t) for t in tags],
        content=body,
        headers={"Content-Type": media_type},
    )


async def test_each_tag_is_created_and_answered(client: httpx.AsyncClient) -> None:
    digest, body = await push_image(client, "app", None)
    tags = ["1.2.3", "1.2", "1", "latest"]
    r = await put(client, "app", digest, body, tags)
    assert r.status_code == 201, r.text
    assert r.headers.get_list("OCI-Tag") == tags  # one field line per tag, in the order sent
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Location"] == f"http://registry.test/v2/app/manifests/{digest}"
    for tag in tags:
        for method in ("GET", "HEAD"):
            got = await client.request(method, f"/v2/app/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
    assert (await client.get("/v2/app/tags/list")).json()["tags"] == sorted(tags)


async def test_no_tag_parameter_no_header(client: httpx.AsyncClient) -> None:
    digest, body = await push_image(client, "app", None)
    r = await put(client, "app", digest, body, [])
    assert r.status_code == 201 and "OCI-Tag" not in r.headers


async def test_limit_and_414(client: httpx.AsyncClient) -> None:
    digest, body = await push_image(client, "many", None)
    tags = [f"t{i:03d}" for i in range(MAX_TAGS_PER_PUSH)]
    r = await put(client, "many", digest, body, tags)
    assert r.status_code == 201 and r.headers.get_list("OCI-Tag") == tags
    # One more than the limit, counted as sent (duplicates too): 414, and nothing is tagged.
    r = await put(client, "many", digest, body, ["over"] * (MAX_TAGS_PER_PUSH + 1))
    assert r.status_code == 414, r.text
    assert error_codes(r) == ["TAG_INVALID"]
    assert r.json()["errors"][0]["detail"] == {"limit": MAX_TAGS_PER_PUSH, "count": MAX_TAGS_PER_PUSH + 1}
    assert (await client.head("/v2/many/manifests/over")).status_code == 404


async def test_duplicates_are_answered_once(client: httpx.AsyncClient) -> None:
    digest, body = await push_image(client, "dup", None)
    r = await put(client, "dup", digest, body, ["a", "b", "a"])
    assert r.status_code == 201 and r.headers.get_list("OCI-Tag") == ["a", "b"]


@pytest.mark.parametrize("bad", ["", ".hidden", "-x", "a" * 129, "sha256:abc", "a/b", "tag with space"])
async def test_a_bad_tag_refuses_the_whole_push(client: httpx.AsyncClient, bad: str) -> None:
    _, body = await push_image(client, "bad", "keep")
    other = body.replace(b'"layers"', b'"annotations":{"x":"y"},"layers"')
    other_digest = digest_of(other)
    r = await put(client, "bad", other_digest, other, ["good", bad])
    assert r.status_code == 400, r.text
    assert error_codes(r) == ["TAG_INVALID"]
    assert r.json()["errors"][0]["detail"] == {"tag": bad}
    assert (await client.head(f"/v2/bad/manifests/{other_digest}")).status_code == 404
    assert (await client.head("/v2/bad/manifests/good")).status_code == 404
    assert (await client.get("/v2/bad/tags/list")).json()["tags"] == ["keep"]


async def test_tag_parameters_need_a_push_by_digest(client: httpx.AsyncClient) -> None:
    _, body = await push_image(client, "bytag", None)
    r = await put(client, "bytag", "v1", body, ["v2"])
    assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]
    assert "push by digest" in r.json()["errors"][0]["message"]
    assert (await client.head("/v2/bytag/manifests/v1")).status_code == 404


async def test_digest_mismatch_tags_nothing(client: httpx.AsyncClient) -> None:
    _, body = await push_image(client, "mis", None)
    r = await put(client, "mis", "sha256:" + "0" * 64, body, ["v1"])
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert (await client.head("/v2/mis/manifests/v1")).status_code == 404


async def test_tags_move_to_the_pushed_digest(client: httpx.AsyncClient) -> None:
    old, _ = await push_image(client, "move", "latest", seed="old")
    new, body = await push_image(client, "move", None, seed="new")
    r = await put(client, "move", new, body, ["latest", "stable"])
    assert r.status_code == 201
    for tag in ("latest", "stable"):
        assert (await client.head(f"/v2/move/manifests/{tag}")).headers["Docker-Content-Digest"] == new
    assert (await client.head(f"/v2/move/manifests/{old}")).status_code == 200  # untagged, still there


async def test_sha512_tag_resolves_to_the_sha512_digest(client: httpx.AsyncClient) -> None:
    body = await image512(client, "s5", "amd64")
    digest = sha512_of(body)
    r = await put(client, "s5", digest, body, ["v1", "latest"])
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers.get_list("OCI-Tag") == ["v1", "latest"]
    assert r.headers["Location"].endswith(f"/v2/s5/manifests/{digest}")
    for ref in ("v1", "latest", digest):
        for method in ("GET", "HEAD"):
            got = await client.request(method, f"/v2/s5/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
            assert got.status_code == 200
            assert got.headers["Docker-Content-Digest"] == digest
            assert got.headers["ETag"] == f'"{digest}"'
            assert got.headers["Content-Length"] == str(len(body))
            if method == "GET":
                assert got.content == body
    # Stored under sha512 only: the same bytes' sha256 names nothing in the repository.
    assert (await client.head(f"/v2/s5/manifests/{digest_of(body)}")).status_code == 404


async def test_sha512_tag_link_holds_the_sha512_digest(tmp_path: Path) -> None:
    """distribution's layout, on the filesystem driver: every link holds the pushed digest."""
    root = tmp_path / "root"
    tree = {"storage": {"filesystem": {"rootdirectory": str(root), "fsync": False}}}
    services = create_services(parse_config(tree))
    transport = httpx.ASGITransport(app=RegistryApp(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        body = await image512(client, "lay/out", "arm64")
        digest = sha512_of(body)
        assert (await put(client, "lay/out", digest, body, ["v1"])).status_code == 201
    repo = root / "docker/registry/v2/repositories/lay/out/_manifests"
    hex_ = digest.split(":")[1]
    assert (repo / "tags/v1/current/link").read_text() == digest  # no newline, like distribution
    assert (repo / f"tags/v1/index/sha512/{hex_}/link").read_text() == digest
    assert (repo / f"revisions/sha512/{hex_}/link").read_text() == digest
    assert (root / f"docker/registry/v2/blobs/sha512/{hex_[:2]}/{hex_}/data").read_bytes() == body


async def test_sha512_index_and_children_delete_by_their_digests(client: httpx.AsyncClient) -> None:
    """The conformance teardown: delete the sha512 index, then its sha512 children (409 before:
    the index had been stored under sha256 by the tag push fallback, so its sha512 delete found
    nothing and the child stayed referenced)."""
    children = []
    for arch in ("amd64", "arm64"):
        child = await image512(client, "multi5", arch)
        assert (await put(client, "multi5", sha512_of(child), child, [])).status_code == 201
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha512_of(child),
                "size": len(child),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    index_digest = sha512_of(index)
    r = await put(client, "multi5", index_digest, index, ["multi"], OCI_INDEX)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == index_digest
    got = await client.get("/v2/multi5/manifests/multi", headers={"Accept": OCI_INDEX})
    assert got.headers["Docker-Content-Digest"] == index_digest and got.content == index
    # A child an index lists is refused (dockyard's rule), by its sha512 digest too.
    r = await client.delete(f"/v2/multi5/manifests/{children[0]['digest']}")
    assert r.status_code == 409 and r.json()["errors"][0]["detail"]["referencedBy"] == [index_digest]
    assert (await client.delete(f"/v2/multi5/manifests/{index_digest}")).status_code == 202
    assert (await client.get("/v2/multi5/manifests/multi")).status_code == 404
    for child in children:
        assert (await client.delete(f"/v2/multi5/manifests/{child['digest']}")).status_code == 202
        assert (await client.head(f"/v2/multi5/manifests/{child['digest']}")).status_code == 404


async def test_sha512_manifest_untag_and_delete(client: httpx.AsyncClient) -> None:
    body = await image512(client, "del5", "amd64")
    digest = sha512_of(body)
    assert (await put(client, "del5", digest, body, ["a", "b"])).status_code == 201
    assert (await client.delete("/v2/del5/manifests/a")).status_code == 202
    assert (await client.head(f"/v2/del5/manifests/{digest}")).status_code == 200
    assert (await client.delete(f"/v2/del5/manifests/{digest}")).status_code == 202
    assert (await client.head("/v2/del5/manifests/b")).status_code == 404  # its tags go with it
