"""The admin API: gc, repository delete, retention, tag details, inspect, usage, quotas."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import AppFactory
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


async def test_gc_dry_run_then_real_run(client: httpx.AsyncClient) -> None:
    await push_image(client, "app", "v1")
    r = await client.post("/admin/v1/gc", json={"dryRun": True})
    assert r.status_code == 200
    report = r.json()
    assert report["dry_run"] is True and report["blobs_deleted"] == []  # everything is fresh or used
    assert report["blobs_total"] == report["blobs_marked"] == 3
    r = await client.post("/admin/v1/gc", json={})
    assert r.status_code == 200 and r.json()["dry_run"] is False
    last = (await client.get("/admin/v1/gc")).json()["last"]
    assert last["blobs_total"] == 3 and "seconds" in last
    r = await client.post("/admin/v1/gc", json={"dryRun": "yes"})
    assert r.status_code == 400 and "dryRun must be true or false" in r.text


async def test_delete_repository_leaves_catalog(client: httpx.AsyncClient) -> None:
    await push_image(client, "keep", "v1")
    await push_image(client, "team/drop", "v1")
    assert (await client.delete("/admin/v1/repositories/team/drop")).status_code == 202
    assert (await client.get("/v2/_catalog")).json()["repositories"] == ["keep"]
    assert (await client.get("/v2/team/drop/tags/list")).status_code == 404
    r = await client.delete("/admin/v1/repositories/team/drop")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]


async def test_deleting_last_manifest_then_gc_empties_catalog(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "lonely", "v1")
    assert (await client.delete(f"/v2/lonely/manifests/{digest}")).status_code == 202
    assert (await client.post("/admin/v1/gc", json={})).json()["repositories_removed"] == ["lonely"]
    assert (await client.get("/v2/_catalog")).json()["repositories"] == []


async def test_index_child_delete_needs_force(client: httpx.AsyncClient) -> None:
    child, body = await push_image(client, "multi", None)
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, body)]}
    ).encode()
    r = await client.put("/v2/multi/manifests/latest", content=index, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 201
    r = await client.delete(f"/v2/multi/manifests/{child}")
    assert r.status_code == 409 and error_codes(r) == ["DENIED"]
    assert digest_of(index) in r.json()["errors"][0]["message"]
    assert (await client.delete(f"/v2/multi/manifests/{child}?force=true")).status_code == 202


async def test_tag_details_and_inspect(client: httpx.AsyncClient) -> None:
    config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "variant": "v8",
            "created": "2026-01-02T03:04:05Z",
            "config": {"Env": ["A=1"], "Labels": {"team": "x"}, "Entrypoint": ["/bin/sh"]},
            "history": [{"created_by": "COPY . /"}],
        }
    ).encode()
    cfg = await push_blob(client, "insp", config)
    layer = await push_blob(client, "insp", b"layer!")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg,
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 6}
            ],
        }
    ).encode()
    await client.put("/v2/insp/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    r = await client.get("/admin/v1/repositories/insp/tags")
    (tag,) = r.json()["tags"]
    assert tag["tag"] == "v1" and tag["digest"] == digest_of(manifest)
    assert tag["size"] == len(manifest) + len(config) + 6
    assert tag["platforms"] == ["linux/arm64/v8"]
    assert abs(tag["pushed"] - time.time()) < 60
    r = await client.get("/admin/v1/repositories/insp/manifests/v1")
    info = r.json()
    assert info["platforms"] == ["linux/arm64/v8"] and info["tags"] == ["v1"]
    assert info["env"] == ["A=1"] and info["labels"] == {"team": "x"} and info["entrypoint"] == ["/bin/sh"]
    assert info["created"] == "2026-01-02T03:04:05Z" and info["history"] == [{"created_by": "COPY . /"}]
    assert [layer["size"] for layer in info["layers"]] == [6]
    assert (await client.get("/admin/v1/repositories/insp/manifests/nope")).status_code == 404
    assert (await client.get("/admin/v1/repositories/none/tags")).status_code == 404


async def test_usage_counts_shared_and_unique(client: httpx.AsyncClient) -> None:
    shared = b"s" * 1000
    for name, unique in (("a", b"u" * 300), ("b", b"v" * 500)):
        await push_blob(client, name, shared)
        await push_blob(client, name, unique)
    r = await client.get("/admin/v1/usage")
    usage = {u["repository"]: u for u in r.json()["repositories"]}
    assert usage["a"] == {"repository": "a", "total": 1300, "unique": 300, "shared": 1000, "blobs": 2}
    assert usage["b"]["unique"] == 500 and usage["b"]["shared"] == 1000
    assert r.json()["stored"] == 1800 and r.json()["blobs"] == 3
    only = (await client.get("/admin/v1/usage", params={"repository": "b"})).json()
    assert [u["repository"] for u in only["repositories"]] == ["b"]


async def test_quota_refuses_before_storing(make_client: AppFactory) -> None:
    async with make_client({"quotas": [{"repositories": "team-a/**", "limit": "2KiB"}]}) as client:
        await push_blob(client, "team-a/app", b"x" * 1500)
        data = b"y" * 1000
        r = await client.post(
            "/v2/team-a/app/blobs/uploads/", params={"digest": digest_of(data)}, content=data
        )
        assert r.status_code == 403 and error_codes(r) == ["DENIED"]
        message = r.json()["errors"][0]["message"]
        assert "team-a/**" in message and "exceed" in message
        assert r.json()["errors"][0]["detail"]["exceededBy"] == 1500 + 1000 - 2048
        assert (await client.head(f"/v2/team-a/app/blobs/{digest_of(data)}")).status_code == 404
        # The same blob again is already counted; other namespaces are not limited.
        await push_blob(client, "team-a/other", b"x" * 1500)
        await push_blob(client, "team-b/app", b"z" * 5000)
        # A chunked upload whose size was not known up front is refused at the end, nothing kept.
        loc = (await client.post("/v2/team-a/app/blobs/uploads/")).headers["Location"]
        await client.patch(loc, content=data)
        r = await client.put(loc, params={"digest": digest_of(data)})
        assert r.status_code == 403
        assert (await client.get(loc)).status_code == 404
        quotas = (await client.get("/admin/v1/quotas")).json()["quotas"]
        assert quotas == [{"repositories": "team-a/**", "limit": 2048, "used": 1500}]


def _backdate(client: httpx.AsyncClient, name: str, tag: str, days: float, root: str | None) -> None:
    """Pretend a tag was pushed ``days`` ago (filesystem driver only)."""
    assert root is not None
    path = f"{root}/docker/registry/v2/repositories/{name}/_manifests/tags/{tag}/current/link"
    when = time.time() - days * 86400
    os.utime(path, (when, when))


@pytest.fixture
def root(storage_section: dict[str, Any]) -> str | None:
    fs = storage_section.get("filesystem")
    return fs["rootdirectory"] if fs else None


async def test_retention_keep_newest_and_report_rules(client: httpx.AsyncClient, root: str | None) -> None:
    for i in range(5):
        await push_image(client, "svc", f"build-{i}", seed=str(i))
    await push_image(client, "svc", "v1.0", seed="release")
    if root is not None:
        for i in range(5):
            _backdate(client, "svc", f"build-{i}", 10 - i, root)
    policy = {"repositories": "svc", "keep": 2, "keepmatch": "^v\\d", "match": "^build-"}
    r = await client.post("/admin/v1/retention", json={"dryRun": True, "policies": [policy]})
    report = r.json()
    assert r.status_code == 200 and report["dry_run"] is True
    deleted = sorted(d["tag"] for d in report["deleted"])
    if root is not None:
        assert deleted == ["build-0", "build-1", "build-2"]
    assert len(deleted) == 3
    assert all("beyond the 2 most recently pushed" in d["rule"] for d in report["deleted"])
    assert len((await client.get("/v2/svc/tags/list")).json()["tags"]) == 6  # dry run
    r = await client.post("/admin/v1/retention", json={"policies": [policy]})
    tags = (await client.get("/v2/svc/tags/list")).json()["tags"]
    assert len(tags) == 3 and "v1.0" in tags


async def test_retention_older_than_and_everything_guard(client: httpx.AsyncClient, root: str | None) -> None:
    if root is None:
        pytest.skip("push times can only be backdated on the filesystem driver")
    await push_image(client, "old", "a", seed="a")
    await push_image(client, "old", "b", seed="b")
    _backdate(client, "old", "a", 40, root)
    _backdate(client, "old", "b", 5, root)
    r = await client.post(
        "/admin/v1/retention", json={"policies": [{"repositories": "old", "olderthan": "30d"}]}
    )
    report = r.json()
    assert [(d["tag"], d["rule"]) for d in report["deleted"]] == [("a", "pushed 40d ago (older than 30d)")]
    # A policy that would delete every tag is refused without force.
    everything = [{"repositories": "old", "match": "."}]
    r = await client.post("/admin/v1/retention", json={"policies": everything})
    assert r.json()["deleted"] == [] and r.json()["refused"][0]["repository"] == "old"
    r = await client.post("/admin/v1/retention", json={"policies": everything, "force": True})
    assert [d["tag"] for d in r.json()["deleted"]] == ["b"]


async def test_retention_untagged_and_bad_policies(client: httpx.AsyncClient) -> None:
    first, _ = await push_image(client, "ut", "latest", seed="1")
    await push_image(client, "ut", "latest", seed="2")
    r = await client.post(
        "/admin/v1/retention", json={"policies": [{"repositories": "ut", "untagged": True}]}
    )
    # Just pushed: inside the grace period, so it stays.
    assert r.json()["untagged_deleted"] == []
    for bad in ({"match": "("}, {"olderthan": "soon"}, {"keep": -1}, {"unknown": 1}):
        r = await client.post("/admin/v1/retention", json={"policies": [{"repositories": "ut", **bad}]})
        assert r.status_code == 400, bad
        assert "invalid policy" in r.json()["errors"][0]["message"]
    assert (await client.get(f"/v2/ut/manifests/{first}")).status_code == 200
