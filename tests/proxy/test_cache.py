"""Keeping the cache in bounds: ttl expiry of content not pulled, the size limit (least recently
pulled first; hosted content and fills in progress never), purges, and the admin API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from dockyard.oci.digest import Digest
from tests.proxy.conftest import Clock, Proxy, Upstream
from tests.proxy.images import Image, push
from tests.proxy.test_pull import ACCEPT, pull

pytestmark = pytest.mark.anyio
LAYER = 300_000


def epoch(proxy: Proxy) -> Clock:
    """One stepped epoch clock for the coordinator (cache times) and the pull log (pull times)."""
    clock = Clock()
    clock.now = 1_800_000_000.0
    proxy.services.coordinator.clock = clock  # type: ignore[attr-defined]
    proxy.services.pulls.clock = clock
    return clock


async def stored(proxy: Proxy, digest: str) -> bool:
    return await proxy.services.registry.blobs.size_global(Digest.parse(digest)) is not None


async def three_images(up: Upstream) -> list[Image]:
    async with up.client() as c:
        return [await push(c, f"library/{n}", "1", seed=n, sizes=(LAYER,)) for n in ("a", "b", "c")]


async def test_ttl_expires_what_was_not_pulled_and_keeps_what_was(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    a, b, _ = await three_images(up)
    proxy = make_proxy({"docker.io": (up, {"ttl": "10h"})})
    clock = epoch(proxy)
    await pull(proxy, "docker.io/library/a", "1")
    await pull(proxy, "docker.io/library/b", "1")
    cache = proxy.services.proxy.cache  # type: ignore[union-attr]

    clock.advance(6 * 3600)
    await pull(proxy, "docker.io/library/a", "1")  # a is pulled again: its ttl starts over
    assert (await cache.maintain()).evicted == []

    clock.advance(5 * 3600)  # b: 11 h since it was fetched and pulled; a: 5 h
    report = await cache.maintain()
    assert [(e.image.repository, e.reason) for e in report.evicted] == [("docker.io/library/b", "ttl")]
    assert report.bytes_freed >= LAYER
    assert not any([await stored(proxy, d) for d in b.blobs])
    assert all([await stored(proxy, d) for d in a.blobs])
    r = await proxy.client.get("/v2/_catalog")
    assert r.json()["repositories"] == ["docker.io/library/a"]

    fetched = up.count("GET", "/library/b/blobs/")
    assert await pull(proxy, "docker.io/library/b", "1") == {b.digest: b.manifest, **b.blobs}
    assert up.count("GET", "/library/b/blobs/") == fetched + len(b.blobs)  # fetched again


async def test_ttl_zero_keeps_for_ever(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    await three_images(up)
    proxy = make_proxy({"docker.io": (up, {"ttl": 0})})
    clock = epoch(proxy)
    await pull(proxy, "docker.io/library/a", "1")
    clock.advance(10 * 365 * 86400)
    assert (await proxy.services.proxy.cache.maintain()).evicted == []  # type: ignore[union-attr]


async def test_size_limit_evicts_least_recently_pulled_and_never_hosted_content(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    a, b, c = await three_images(up)
    # Room for one of the images (each a layer, a config and a manifest), besides hosted content.
    proxy = make_proxy({"docker.io": (up, {})}, {"proxy": {"cache": {"maxsize": LAYER + 50_000}}})
    clock = epoch(proxy)
    for name in ("a", "b", "c"):
        await pull(proxy, f"docker.io/library/{name}", "1")
        clock.advance(60)
    await pull(proxy, "docker.io/library/a", "1")  # a is the most recent now; b the least
    # A hosted image made of c's layer and config: those are the hosted repository's too.
    await push(proxy.client, "team/app", "1", seed="c", sizes=(LAYER,))

    cache = proxy.services.proxy.cache  # type: ignore[union-attr]
    listing = await cache.listing()
    assert [i["repository"] for i in listing["images"]] == [
        "docker.io/library/a",
        "docker.io/library/c",
        "docker.io/library/b",
    ]
    assert listing["cacheBytes"] < 3 * LAYER  # c's layer is not counted: it is hosted content too

    report = await cache.maintain()
    assert [(e.image.repository, e.reason) for e in report.evicted] == [("docker.io/library/b", "size")]
    assert not any([await stored(proxy, d) for d in b.blobs])
    assert all([await stored(proxy, d) for d in a.blobs])

    # Purge c: its image goes, but the layer the hosted image uses stays and still pulls.
    purged = await cache.purge(["docker.io/library/c"])
    assert [e.image.repository for e in purged.evicted] == ["docker.io/library/c"]
    assert await stored(proxy, c.layers[0])
    r = await proxy.client.get(f"/v2/team/app/blobs/{c.layers[0]}")
    assert r.status_code == 200 and r.content == c.blobs[c.layers[0]]


async def test_an_image_being_filled_is_never_evicted(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    a, _, _ = await three_images(up)
    proxy = make_proxy({"docker.io": (up, {})}, {"proxy": {"cache": {"maxsize": 0}}})
    epoch(proxy)
    r = await proxy.client.get("/v2/docker.io/library/a/manifests/1", headers=ACCEPT)
    assert r.status_code == 200
    up.gate = asyncio.Event()  # the layer's body stops half way until the test lets it go
    reading = asyncio.create_task(proxy.client.get(f"/v2/docker.io/library/a/blobs/{a.layers[0]}"))
    while up.count("GET", "/blobs/") == 0:
        await asyncio.sleep(0.01)
    cache = proxy.services.proxy.cache  # type: ignore[union-attr]
    report = await cache.maintain()
    assert report.evicted == [] and report.skipped_filling == [f"docker.io/library/a@{a.digest}"]
    up.gate.set()
    got = await reading
    assert got.status_code == 200 and got.content == a.blobs[a.layers[0]]
    report = await cache.maintain()  # filled: now the limit of 0 takes it
    assert [e.reason for e in report.evicted] == ["size"]


async def test_dry_run_evicts_nothing_and_the_admin_api_lists_and_purges(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    a, b, _ = await three_images(up)
    proxy = make_proxy({"docker.io": (up, {})}, {"proxy": {"cache": {"maxsize": 1}}})
    clock = epoch(proxy)
    await pull(proxy, "docker.io/library/a", "1")
    await pull(proxy, "docker.io/library/b", "1")
    clock.advance(60)
    cache = proxy.services.proxy.cache  # type: ignore[union-attr]
    report = await cache.maintain(dry_run=True)
    assert len(report.evicted) == 2 and report.bytes_freed == 0
    assert all([await stored(proxy, d) for d in [*a.blobs, *b.blobs]])

    r = await proxy.client.get("/admin/v1/proxy/cache")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {i["repository"] for i in body["images"]} == {"docker.io/library/a", "docker.io/library/b"}
    first = body["images"][0]
    assert first["upstream"] == "http://docker.io.up.test" and first["tags"] == ["1"]
    assert first["bytes"] > LAYER and first["expired"] is False and body["maxBytes"] == 1

    r = await proxy.client.post("/admin/v1/proxy/cache/purge", json={"repositories": ["docker.io/library/a"]})
    assert r.status_code == 200, r.text
    assert [e["repository"] for e in r.json()["evicted"]] == ["docker.io/library/a"]
    assert r.json()["bytesFreed"] >= LAYER
    r = await proxy.client.post("/admin/v1/proxy/cache/purge", json={"expired": True, "dryRun": True})
    assert [e["reason"] for e in r.json()["evicted"]] == ["size"]
    for bad in (
        {"repositories": "x"},
        {"repositories": []},
        {"dryRun": 1},
        {"expired": True, "repositories": ["x"]},
    ):
        r = await proxy.client.post("/admin/v1/proxy/cache/purge", json=bad)
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "BAD_REQUEST", (bad, r.text)


async def test_admin_cache_routes_without_a_proxy_answer_404(make_upstream: Callable[..., Upstream]) -> None:
    up = make_upstream()
    async with up.client() as c:
        for path in ("/admin/v1/proxy/cache", "/admin/v1/proxy/sync"):
            r = await c.get(path)
            assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND", r.text
