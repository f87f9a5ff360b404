"""Pulling through the cache: manifests by tag and digest, blobs, revalidation, hosted beside mirrored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.oci.mediatypes import OCI_MANIFEST
from tests.api.helpers import error_codes, push_image
from tests.proxy.conftest import Clock, Proxy, Upstream
from tests.proxy.images import push, push_index

pytestmark = pytest.mark.anyio
ACCEPT = {"Accept": OCI_MANIFEST}


async def pull(proxy: Proxy, name: str, reference: str) -> dict[str, bytes]:
    """Pull a manifest and its blobs through the cache; returns digest → bytes received."""
    r = await proxy.client.get(f"/v2/{name}/manifests/{reference}", headers=ACCEPT)
    assert r.status_code == 200, r.text
    got = {r.headers["Docker-Content-Digest"]: r.content}
    doc = r.json()
    for d in [doc["config"], *doc["layers"]]:
        b = await proxy.client.get(f"/v2/{name}/blobs/{d['digest']}")
        assert b.status_code == 200, b.text
        got[d["digest"]] = b.content
    return got


async def test_pull_by_tag_then_from_cache(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/nginx", "1.27", seed="n1")
    proxy = make_proxy({"docker.io": (up, {})})
    got = await pull(proxy, "docker.io/library/nginx", "1.27")
    assert got == {image.digest: image.manifest, **image.blobs}
    fetched = list(up.log)
    assert up.count("GET", "/blobs/") == len(image.blobs)

    again = await pull(proxy, "docker.io/library/nginx", "1.27")
    assert again == got
    assert up.log == fetched  # within revalidate: not even a HEAD; blobs from the cache
    r = await proxy.client.get("/v2/_catalog")
    assert "docker.io/library/nginx" in r.json()["repositories"]


async def test_tag_moved_upstream_is_seen_after_revalidate_not_before(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        old = await push(c, "library/app", "latest", seed="old")
    proxy = make_proxy({"docker.io": (up, {"revalidate": "30s"})})
    await pull(proxy, "docker.io/library/app", "latest")
    async with up.client() as c:
        new = await push(c, "library/app", "latest", seed="new")

    proxy.clock.advance(29)
    r = await proxy.client.get("/v2/docker.io/library/app/manifests/latest", headers=ACCEPT)
    assert r.headers["Docker-Content-Digest"] == old.digest
    assert up.count("HEAD", "/manifests/") == 0

    proxy.clock.advance(2)
    got = await pull(proxy, "docker.io/library/app", "latest")
    assert new.digest in got and got[new.digest] == new.manifest
    assert up.count("HEAD", "/manifests/latest") == 1  # revalidated by a HEAD, then fetched by digest
    assert up.count("GET", f"/manifests/{new.digest}") == 1

    # Revalidated: served from the cache again until the next interval.
    heads = up.count("HEAD", "/manifests/")
    r = await proxy.client.get("/v2/docker.io/library/app/manifests/latest", headers=ACCEPT)
    assert r.headers["Docker-Content-Digest"] == new.digest
    assert up.count("HEAD", "/manifests/") == heads


async def test_revalidate_zero_asks_on_every_pull_and_digests_never(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "team/tool", "v1", seed="t")
    proxy = make_proxy({"ghcr.io": (up, {"revalidate": 0})})
    for _ in range(3):
        r = await proxy.client.get("/v2/ghcr.io/team/tool/manifests/v1", headers=ACCEPT)
        assert r.status_code == 200
    assert up.count("HEAD", "/manifests/v1") == 2  # the first pull was a GET
    for _ in range(3):
        r = await proxy.client.get(f"/v2/ghcr.io/team/tool/manifests/{image.digest}")
        assert r.status_code == 200
    assert up.count("HEAD", f"/manifests/{image.digest}") == 0
    assert up.count("GET", f"/manifests/{image.digest}") == 0  # cached when the tag was


async def test_dockerhub_names_single_component_and_registry_mirrors(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    """``docker.io/nginx`` is Docker Hub's ``library/nginx``; docker's registry-mirrors asks for
    ``library/nginx`` with no host: all three address one repository, stored under its prefix."""
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/nginx", "1.27", seed="hub")
    proxy = make_proxy({"docker.io": (up, {"dockerhub": True})})
    for name in ("docker.io/nginx", "library/nginx", "docker.io/library/nginx"):
        got = await pull(proxy, name, "1.27")
        assert got[image.digest] == image.manifest
    assert up.count("GET", "/blobs/") == len(image.blobs)
    r = await proxy.client.get("/v2/_catalog")
    assert r.json()["repositories"] == ["docker.io/library/nginx"]


async def test_hosted_beside_mirrored_and_pushes_to_a_prefix_are_denied(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        await push(c, "bitnami/redis", "7", seed="r")
    proxy = make_proxy({"docker.io": (up, {"dockerhub": True})})
    # Prefixed: refused with a clear DENIED, before any byte is sent.
    r = await proxy.client.post("/v2/docker.io/library/nginx/blobs/uploads/")
    assert r.status_code == 403 and error_codes(r) == ["DENIED"]
    assert "read-only mirror" in r.json()["errors"][0]["message"]
    r = await proxy.client.put(
        "/v2/docker.io/library/nginx/manifests/x", content=b"{}", headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 403 and error_codes(r) == ["DENIED"]

    # An unprefixed name nothing hosts reads through to Docker Hub (registry-mirrors)...
    r = await proxy.client.get("/v2/bitnami/redis/manifests/7", headers=ACCEPT)
    assert r.status_code == 200
    mirrored = r.headers["Docker-Content-Digest"]
    # ...until a hosted repository of that name is pushed: then it answers (it shadows the mirror
    # for registry-mirrors clients; the prefixed name still reaches Docker Hub's).
    hosted, _ = await push_image(proxy.client, "bitnami/redis", "7", seed="mine")
    r = await proxy.client.get("/v2/bitnami/redis/manifests/7", headers=ACCEPT)
    assert r.headers["Docker-Content-Digest"] == hosted != mirrored
    r = await proxy.client.get("/v2/docker.io/bitnami/redis/manifests/7", headers=ACCEPT)
    assert r.headers["Docker-Content-Digest"] == mirrored
    # A plain hosted repository works as ever.
    await push_image(proxy.client, "team/app", "1", seed="team")
    r = await proxy.client.get("/v2/team/app/manifests/1", headers=ACCEPT)
    assert r.status_code == 200


async def test_containerd_ns_parameter_selects_the_upstream(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    hub, quay = make_upstream(), make_upstream()
    async with hub.client() as c:
        from_hub = await push(c, "library/busybox", "1", seed="hub")
    async with quay.client() as c:
        from_quay = await push(c, "library/busybox", "1", seed="quay")
    proxy = make_proxy({"docker.io": (hub, {}), "quay.io": (quay, {})})
    for ns, image in (("docker.io", from_hub), ("quay.io", from_quay)):
        r = await proxy.client.get("/v2/library/busybox/manifests/1", params={"ns": ns}, headers=ACCEPT)
        assert r.status_code == 200, r.text
        assert r.headers["OCI-Namespace"] == ns
        assert r.headers["Docker-Content-Digest"] == image.digest
        layer = image.layers[0]
        b = await proxy.client.get(f"/v2/library/busybox/blobs/{layer}", params={"ns": ns})
        assert b.content == image.blobs[layer] and b.headers["OCI-Namespace"] == ns
    # An ns that names no upstream is ignored (no header): the name is served as it is.
    r = await proxy.client.get("/v2/library/busybox/manifests/1", params={"ns": "example.com"})
    assert r.status_code == 404 and "OCI-Namespace" not in r.headers
    r = await proxy.client.get("/v2/_catalog")
    assert r.json()["repositories"] == ["docker.io/library/busybox", "quay.io/library/busybox"]


async def test_index_cached_whole_children_when_pulled_and_platform_filter(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        amd = await push(c, "library/multi", None, seed="amd", arch="amd64")
        arm = await push(c, "library/multi", None, seed="arm", arch="arm64")
        index = await push_index(c, "library/multi", "1", {"amd64": amd, "arm64": arm})
    proxy = make_proxy({"docker.io": (up, {"platforms": ["linux/amd64"]})})
    r = await proxy.client.get("/v2/docker.io/library/multi/manifests/1")
    assert r.headers["Docker-Content-Digest"] == index
    assert up.count("GET", amd.digest) == up.count("GET", arm.digest) == 0  # children: when pulled
    got = await pull(proxy, "docker.io/library/multi", amd.digest)
    assert got[amd.digest] == amd.manifest
    r = await proxy.client.get(f"/v2/docker.io/library/multi/manifests/{arm.digest}")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    assert up.count("GET", arm.digest) == 0  # filtered: never fetched
    for blob in arm.blobs:
        assert up.count("GET", blob) == 0


async def test_tags_list_comes_from_the_upstream(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        for tag in ("a", "b"):
            await push(c, "org/x", tag, seed=tag, sizes=(10,))
    proxy = make_proxy({"ghcr.io": (up, {})})
    r = await proxy.client.get("/v2/ghcr.io/org/x/tags/list")
    assert r.status_code == 200 and r.json()["tags"] == ["a", "b"]


async def test_garbage_collection_keeps_a_partly_pulled_cache(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    """A cached manifest whose blobs were not all pulled yet (an index's other platforms, a layer
    not asked for) is neither an error for the collector nor collected while tagged."""
    from dockyard.storage import gc

    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/gc", "1", seed="gc", sizes=(1000, 2000))
    proxy = make_proxy({"docker.io": (up, {})})
    r = await proxy.client.get("/v2/docker.io/library/gc/manifests/1", headers=ACCEPT)
    assert r.status_code == 200
    first = image.layers[0]
    assert (await proxy.client.get(f"/v2/docker.io/library/gc/blobs/{first}")).status_code == 200
    report = await gc.collect(proxy.services.registry, gc.GCOptions(grace_seconds=0))
    assert report.blobs_deleted == [] and report.manifests_deleted == [], report.to_json()
    fetched = list(up.log)
    got = await pull(proxy, "docker.io/library/gc", "1")
    assert got == {image.digest: image.manifest, **image.blobs}
    fetched_again = {p.rsplit("/", 1)[1] for m, p in up.log[len(fetched) :] if m == "GET"}
    assert fetched_again == set(image.blobs) - {first}  # what was cached stayed cached


async def test_admin_api_shows_upstreams_rate_limits_and_cached_repositories(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        await push(c, "library/nginx", "1", seed="adm", sizes=(10,))
    up.headers = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "42;w=21600"}
    proxy = make_proxy(
        {"docker.io": (up, {"dockerhub": True, "credentials": {"username": "u", "password": "hunter2"}})}
    )
    await pull(proxy, "nginx", "1")
    await push_image(proxy.client, "team/app", "1")
    r = await proxy.client.get("/admin/v1/proxy")
    assert r.status_code == 200, r.text
    assert "hunter2" not in r.text
    (upstream,) = r.json()["upstreams"]
    assert upstream["prefix"] == "docker.io" and upstream["credentials"] is True
    assert upstream["rateLimit"] == {"limit": "100;w=21600", "remaining": "42;w=21600"}
    assert upstream["repositories"] == ["docker.io/library/nginx"]  # team/app is hosted


async def test_chained_caches_edge_central_upstream(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    """edge → central → upstream: the edge asks the central cache for Docker Hub's name
    (``library/busybox``), which the central one's ``dockerhub`` upstream serves."""
    from dockyard.api.app import RegistryApp
    from dockyard.health import HealthApp

    origin = make_upstream()
    async with origin.client() as c:
        image = await push(c, "library/busybox", "1", seed="chain")
    central = make_proxy({"docker.io": (origin, {"dockerhub": True})})
    central_app = HealthApp(RegistryApp(central.services), central.services)
    edge = make_proxy({"docker.io": (Upstream(central_app, central.services), {"dockerhub": True})})
    for _ in range(2):
        assert await pull(edge, "library/busybox", "1") == {image.digest: image.manifest, **image.blobs}
    assert origin.count("GET", "/blobs/") == len(image.blobs)  # each blob crossed each hop once
    r = await central.client.get("/v2/_catalog")
    assert r.json()["repositories"] == ["docker.io/library/busybox"]


async def test_workers_share_when_a_tag_was_last_revalidated(
    make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    """Two workers on one store (the local coordinator): what one learnt from the upstream the
    other does not ask again within the interval, and after it one HEAD serves both."""
    from dockyard.app import create_services
    from dockyard.config import parse_config

    up = make_upstream()
    async with up.client() as c:
        await push(c, "library/app", "latest", seed="w")
    clock = Clock()
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}},
        "proxy": {
            "upstreams": [{"prefix": "docker.io", "remoteurl": "http://up.test", "revalidate": "30s"}],
            "spooldirectory": str(tmp_path / "spool"),
        },
    }
    a, b = (create_services(parse_config(tree), clock=clock, upstream_transports=lambda _: up) for _ in "ab")
    for services in (a, b):
        services.registry.coordinator.clock = clock  # type: ignore[attr-defined]
    name = "docker.io/library/app"
    await a.model.pull_manifest(name, "latest", head=False)
    for worker in (b, a, b):
        await worker.model.pull_manifest(name, "latest", head=False)
    assert (up.count("GET", "/manifests/latest"), up.count("HEAD", "/manifests/")) == (1, 0)
    clock.advance(31)
    for worker in (b, a, b, a):
        await worker.model.pull_manifest(name, "latest", head=False)
    assert up.count("HEAD", "/manifests/latest") == 1
