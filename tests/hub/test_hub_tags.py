"""Hub-compatible tag listing: the exact field set of Docker Hub's tag and image objects, paging,
filters, ordering, namespaces, pull times and the single-tag GET/DELETE."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
import pytest

from dockyard.browse.pulls import PullLog
from tests.api.helpers import OCI_INDEX, OCI_MANIFEST, descriptor, push_blob, push_image

pytestmark = pytest.mark.anyio

# Docker Hub's fields (peers.md b3/b4: the OpenAPI plus a captured live response).
HUB_PAGE = {"count", "next", "previous", "results"}
HUB_TAG = {
    "creator", "id", "images", "last_updated", "last_updater", "last_updater_username", "name",
    "repository", "full_size", "v2", "tag_status", "tag_last_pulled", "tag_last_pushed",
    "media_type", "content_type", "digest",
}  # fmt: skip
HUB_IMAGE = {
    "architecture", "features", "variant", "digest", "os", "os_features", "os_version", "size",
    "status", "last_pulled", "last_pushed",
}  # fmt: skip
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"


def check_types(tag: dict[str, Any]) -> None:
    import re

    assert set(tag) == HUB_TAG
    assert isinstance(tag["name"], str) and isinstance(tag["digest"], str)
    assert isinstance(tag["id"], int) and isinstance(tag["repository"], int)
    assert isinstance(tag["full_size"], int) and tag["v2"] is True
    assert tag["tag_status"] in ("active", "inactive") and tag["content_type"] in ("image", "artifact")
    for key in ("last_updated", "tag_last_pushed"):
        assert re.match(ISO, tag[key]), tag[key]
    assert tag["tag_last_pulled"] is None or re.match(ISO, tag["tag_last_pulled"])
    assert isinstance(tag["images"], list)
    for image in tag["images"]:
        assert set(image) == HUB_IMAGE
        assert isinstance(image["architecture"], str) and isinstance(image["os"], str)
        assert isinstance(image["features"], str) and isinstance(image["os_features"], str)
        assert isinstance(image["size"], int) and image["status"] in ("active", "inactive")


async def push_multiarch(client: httpx.AsyncClient, name: str, tag: str) -> tuple[str, list[str]]:
    children = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        config = json.dumps({"architecture": arch, "os": "linux", "variant": variant}).encode()
        layer = f"layer-{arch}".encode() * 100
        await push_blob(client, name, config)
        await push_blob(client, name, layer)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
            }
        ).encode()
        r = await client.put(
            f"/v2/{name}/manifests/sha256-{arch}",
            content=body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 201
        platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        children.append(descriptor(OCI_MANIFEST, body, platform=platform))
    attestation = {"os": "unknown", "architecture": "unknown"}
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [*children, {**children[0], "platform": attestation}],
    }
    r = await client.put(
        f"/v2/{name}/manifests/{tag}", content=json.dumps(index).encode(), headers={"Content-Type": OCI_INDEX}
    )
    assert r.status_code == 201
    return r.headers["Docker-Content-Digest"], [c["digest"] for c in children]


async def test_tag_list_matches_hub_schema(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "library/debian", "bookworm")
    index_digest, children = await push_multiarch(client, "library/debian", "multi")
    r = await client.get("/v2/repositories/library/debian/tags/")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    page = r.json()
    assert set(page) == HUB_PAGE
    assert page["count"] == 4 and page["next"] is None and page["previous"] is None
    by_name = {t["name"]: t for t in page["results"]}
    for tag in page["results"]:
        check_types(tag)
    single = by_name["bookworm"]
    assert single["digest"] == digest and single["media_type"] == OCI_MANIFEST
    assert single["content_type"] == "image" and single["full_size"] == len(b"layer-a" * 10)
    assert [(i["os"], i["architecture"], i["digest"]) for i in single["images"]] == [
        ("linux", "amd64", digest)
    ]
    multi = by_name["multi"]
    assert multi["digest"] == index_digest and multi["media_type"] == OCI_INDEX
    assert [(i["architecture"], i["variant"], i["digest"]) for i in multi["images"]] == [
        ("amd64", None, children[0]),
        ("arm64", "v8", children[1]),
    ]  # the attestation (unknown/unknown) is not an image
    assert multi["full_size"] == sum(i["size"] for i in multi["images"])
    # The jq recipe from the issue.
    assert sorted(t["name"] for t in page["results"]) == ["bookworm", "multi", "sha256-amd64", "sha256-arm64"]
    # The documented path answers the same.
    r2 = await client.get("/v2/namespaces/library/repositories/debian/tags")
    assert [t["name"] for t in r2.json()["results"]] == [t["name"] for t in page["results"]]


async def test_paging_filter_and_ordering(client: httpx.AsyncClient, storage_section: dict[str, Any]) -> None:
    for i in range(12):
        await push_image(client, "team/app", f"v{i:02d}", seed="same")
    if "filesystem" in storage_section:  # distinct push times: v00 oldest
        root = storage_section["filesystem"]["rootdirectory"]
        for i in range(12):
            link = f"{root}/docker/registry/v2/repositories/team/app/_manifests/tags/v{i:02d}/current/link"
            os.utime(link, (time.time() - 1000 + i, time.time() - 1000 + i))
    r = await client.get("/v2/repositories/team/app/tags/", params={"ordering": "name"})
    page = r.json()
    assert page["count"] == 12 and len(page["results"]) == 10  # default page_size 10
    assert [t["name"] for t in page["results"]] == [f"v{i:02d}" for i in range(10)]
    assert (
        page["next"]
        == "http://registry.test/v2/repositories/team/app/tags/?ordering=name&page=2&page_size=10"
    )
    r = await client.get(page["next"])
    page2 = r.json()
    assert [t["name"] for t in page2["results"]] == ["v10", "v11"] and page2["next"] is None
    assert page2["previous"].endswith("ordering=name&page=1&page_size=10")
    r = await client.get("/v2/repositories/team/app/tags/", params={"ordering": "-name", "page_size": 3})
    assert [t["name"] for t in r.json()["results"]] == ["v11", "v10", "v09"]
    r = await client.get("/v2/repositories/team/app/tags/", params={"name": "v1", "ordering": "name"})
    assert r.json()["count"] == 2 and [t["name"] for t in r.json()["results"]] == ["v10", "v11"]
    if "filesystem" in storage_section:
        r = await client.get("/v2/repositories/team/app/tags/", params={"page_size": 2})  # default: newest
        assert [t["name"] for t in r.json()["results"]] == ["v11", "v10"]
        r = await client.get(
            "/v2/repositories/team/app/tags/", params={"page_size": 2, "ordering": "last_updated"}
        )
        assert [t["name"] for t in r.json()["results"]] == ["v00", "v01"]


async def test_paging_edge_cases(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await push_image(client, "edge/app", f"t{i}")
    base = "/v2/repositories/edge/app/tags/"
    r = await client.get(base, params={"page": 2})
    assert r.status_code == 404 and r.json()["detail"] == "Page not found"
    assert "page 2 is past the end: 3 results make 1 page(s)" in r.json()["message"]
    r = await client.get(base, params={"page_size": 0})
    assert r.status_code == 400
    assert r.json() == {
        "fields": {"page_size": ["Ensure this value is greater than or equal to 1."]},
        "text": "Invalid page_size value",
    }
    r = await client.get(base, params={"page_size": 1000})  # capped like Hub
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    r = await client.get(base, params={"page_size": 1000, "page": 2})
    assert r.status_code == 404
    r = await client.get(base, params={"page": "x"})
    assert r.status_code == 400 and r.json()["fields"] == {"page": ["A valid integer is required."]}
    r = await client.get(base, params={"page": 0})
    assert r.status_code == 400 and r.json()["text"] == "Invalid page value"
    r = await client.get(base, params={"ordering": "size"})
    assert r.status_code == 400 and r.json()["text"] == "Invalid ordering value"
    assert "size is not one of the available choices" in r.json()["fields"]["ordering"][0]
    r = await client.get(base, params={"name": "nothing-matches"})
    assert r.status_code == 200 and r.json() == {"count": 0, "next": None, "previous": None, "results": []}
    r = await client.get("/v2/repositories/edge/missing/tags/")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"


async def test_single_tag_get_and_delete(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "web/site", "v1")
    await push_image(client, "web/site", "v2", seed="b")
    for path in ("/v2/repositories/web/site/tags/v1/", "/v2/namespaces/web/repositories/site/tags/v1"):
        r = await client.get(path)
        assert r.status_code == 200
        check_types(r.json())
        assert r.json()["name"] == "v1" and r.json()["digest"] == digest
    r = await client.get("/v2/repositories/web/site/tags/nope/")
    assert r.status_code == 404 and "tag 'nope' not found" in r.json()["message"]
    r = await client.delete("/v2/repositories/web/site/tags/v1/")
    assert r.status_code == 204
    assert (await client.get("/v2/web/site/tags/list")).json()["tags"] == ["v2"]
    assert (await client.get(f"/v2/web/site/manifests/{digest}")).status_code == 200  # untag only
    assert (await client.delete("/v2/repositories/web/site/tags/v1/")).status_code == 404


async def test_deletes_disabled_and_read_only(make_client: Any) -> None:
    async with make_client({"storage": {"delete": {"enabled": False}}}) as c:
        await push_image(c, "a/b", "v1")
        r = await c.delete("/v2/repositories/a/b/tags/v1/")
        assert r.status_code == 405 and "deletes are disabled" in r.text


async def test_namespace_mapping(client: httpx.AsyncClient) -> None:
    await push_image(client, "plain", "v1")
    await push_image(client, "org/team/tool", "v1")
    await push_image(client, "library/both", "lib")
    await push_image(client, "both", "top")
    # No slash: namespace "library".
    r = await client.get("/v2/repositories/library/plain/tags/")
    assert [t["name"] for t in r.json()["results"]] == ["v1"]
    # Nested: namespace "org", repository "team/tool", slash as is or encoded.
    for path in ("/v2/repositories/org/team/tool/tags/", "/v2/repositories/org/team%2Ftool/tags/"):
        r = await client.get(path)
        assert r.status_code == 200 and r.json()["count"] == 1, path
    # library/both exists, so it wins over the top-level "both".
    r = await client.get("/v2/repositories/library/both/tags/")
    assert [t["name"] for t in r.json()["results"]] == ["lib"]
    r = await client.get("/v2/repositories/library/")
    assert [(x["namespace"], x["name"]) for x in r.json()["results"]] == [
        ("library", "both"),
        ("library", "plain"),
    ]
    r = await client.get("/v2/namespaces/org/repositories")
    assert [x["name"] for x in r.json()["results"]] == ["team/tool"]
    # The registry API of a repository literally named repositories/x is not shadowed.
    await push_image(client, "repositories/x", "v1")
    assert (await client.get("/v2/repositories/x/tags/list")).json() == {
        "name": "repositories/x",
        "tags": ["v1"],
    }
    assert (await client.get("/v2/repositories/x/manifests/v1")).status_code == 200


async def test_pull_times_recorded_on_get_not_head(client: httpx.AsyncClient) -> None:
    await push_image(client, "p/q", "v1")
    tag = (await client.get("/v2/repositories/p/q/tags/v1/")).json()
    assert tag["tag_last_pulled"] is None and tag["images"][0]["last_pulled"] is None
    await client.head("/v2/p/q/manifests/v1")
    assert (await client.get("/v2/repositories/p/q/tags/v1/")).json()["tag_last_pulled"] is None
    await client.get("/v2/p/q/manifests/v1")
    tag = (await client.get("/v2/repositories/p/q/tags/v1/")).json()
    assert tag["tag_last_pulled"] is not None and tag["images"][0]["last_pulled"] is not None
    assert tag["tag_status"] == "active"


async def test_pull_by_tag_as_docker_does_sets_the_tag_pull_time(client: httpx.AsyncClient) -> None:
    """docker and containerd pull a tag with a HEAD by tag (which is not a pull) and then a GET by
    the digest that HEAD answered: the tag counts as pulled, in the Hub API and the UI alike."""
    await push_image(client, "p/q", "v1")
    await push_image(client, "p/q", "v2", seed="b")
    digest = (await client.head("/v2/p/q/manifests/v1")).headers["Docker-Content-Digest"]
    assert (await client.get("/v2/repositories/p/q/tags/v1/")).json()["tag_last_pulled"] is None
    assert (await client.get(f"/v2/p/q/manifests/{digest}")).status_code == 200
    tag = (await client.get("/v2/repositories/p/q/tags/v1/")).json()
    assert tag["images"][0]["last_pulled"] is not None
    assert tag["tag_last_pulled"] is not None
    assert (await client.get("/v2/repositories/p/q/tags/v2/")).json()["tag_last_pulled"] is None


async def test_pull_by_digest_alone_leaves_tag_pull_times_alone(client: httpx.AsyncClient) -> None:
    await push_image(client, "p/q", "v1")
    digest = (await client.get("/v2/repositories/p/q/tags/v1/")).json()["digest"]
    assert (await client.get(f"/v2/p/q/manifests/{digest}")).status_code == 200
    tag = (await client.get("/v2/repositories/p/q/tags/v1/")).json()
    assert tag["images"][0]["last_pulled"] is not None and tag["tag_last_pulled"] is None


async def test_pull_times_flush_to_storage(make_client: Any, storage_section: dict[str, Any]) -> None:
    async with make_client() as c:
        await push_image(c, "p/q", "v1")
        await c.get("/v2/p/q/manifests/v1")
        transport: Any = c._transport
        services = transport.app.app.services
        await services.pulls.flush()
        stored = json.loads(
            await services.driver.get_content("/docker/registry/v2/_dockyard/last-pulled.json")
        )
        assert set(stored) == {"p/q:v1", next(k for k in stored if k.startswith("p/q@sha256:"))}
        # A fresh worker (new pull log, nothing pending) over the same storage reads them back.
        fresh = PullLog(services.driver, services.coordinator)
        await fresh.refresh()
        assert fresh.of_tag("p/q", "v1") == stored["p/q:v1"]
