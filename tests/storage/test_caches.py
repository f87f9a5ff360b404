"""Per-process caches stay correct when another process (here: another Registry over the same store
and coordinator directory) changes the store."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dockyard.browse import browser
from dockyard.browse.browser import Browser
from dockyard.browse.pulls import PullLog
from dockyard.coord import LOCAL_AREA
from dockyard.coord.local import LocalCoordinator
from dockyard.oci.digest import Digest
from dockyard.storage import paths, tags
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.registry import Registry

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def push(registry: Registry, name: str, tag: str, doc: dict[str, object] | None = None) -> Digest:
    config = json.dumps(doc or {"name": name}).encode()
    digest = Digest.of(config)
    upload = await registry.uploads.start(name)

    async def body():  # type: ignore[no-untyped-def]
        yield config

    await registry.uploads.finish(name, upload, digest, body())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": {"mediaType": "a/b", "digest": str(digest), "size": len(config)},
            "layers": [],
        }
    ).encode()
    return (await registry.put_manifest(name, tag, manifest, OCI)).digest


def two_workers(root: Path) -> tuple[Registry, Registry]:
    def worker() -> Registry:
        coordinator = LocalCoordinator(str(root / LOCAL_AREA))
        return Registry(FilesystemDriver(str(root), fsync=False), coordinator=coordinator)

    return worker(), worker()


async def test_catalog_sees_repositories_created_by_another_worker(tmp_path: Path) -> None:
    a, b = two_workers(tmp_path)
    await push(a, "first", "v1")
    assert await b.catalog.names() == ["first"]
    await push(a, "second/nested", "v1")
    assert await b.catalog.names() == ["first", "second/nested"]  # no waiting for a cache to expire
    await push(b, "third", "v1")
    assert await a.catalog.names() == ["first", "second/nested", "third"]


async def test_tag_list_cache_revalidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_workers(tmp_path)
    await push(a, "repo", "one")
    assert await b.tags.names("repo") == ["one"]
    await push(a, "repo", "two")
    assert await b.tags.names("repo") == ["one", "two"]
    # Let the directory age past the quiet period so B caches it, then change it again.
    tags_dir = str(tmp_path) + paths.tags_dir("repo")
    old = time.time() - 10
    os.utime(tags_dir, (old, old))
    assert await b.tags.names("repo") == ["one", "two"]
    assert "repo" in b.tags._lists
    await push(a, "repo", "three")
    assert await b.tags.names("repo") == ["one", "three", "two"]
    await a.delete_manifest("repo", "one")
    os.utime(tags_dir, (old + 1, old + 1))  # a change after caching moves the token
    assert await b.tags.names("repo") == ["three", "two"]
    assert tags.QUIET_SECONDS >= 1.0


async def test_the_read_model_drops_its_caches_when_another_worker_changes_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TTLs far beyond the test: only the coordinator's content generation can refresh the caches.
    monkeypatch.setattr(browser, "SIZES_TTL", 1e9)
    monkeypatch.setattr(browser, "TIMES_TTL", 1e9)
    a, b = two_workers(tmp_path)
    read_model = Browser(b, PullLog(b.driver, b.coordinator))
    link = str(tmp_path) + paths.tag_current_link("repo", "v1")

    def backdate(seconds: int) -> float:
        then = float(int(time.time()) - seconds)
        os.utime(link, (then, then))
        return then

    await push(a, "repo", "v1")
    size = await read_model.storage_size("repo")
    times = await read_model.tag_times("repo", ["v1"])
    backdate(200)
    assert await read_model.tag_times("repo", ["v1"]) == times  # cached: nothing was announced
    await push(a, "repo", "v1", {"name": "repo", "second": True})  # another worker re-tags
    pushed = backdate(100)
    assert await read_model.storage_size("repo") > size
    assert await read_model.tag_times("repo", ["v1"]) == {"v1": pushed}
    before = await b.content_generation()
    await a.delete_manifest("repo", "v1")
    assert await b.content_generation() > before
