"""Garbage collection on both drivers: what is kept, what is freed, and races with writers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.coord import LOCAL_AREA
from dockyard.coord.local import LocalCoordinator
from dockyard.coord.memory import MemoryCoordinator
from dockyard.errors import DomainError, ManifestReferenced, NameUnknown, ReferencesMissing
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.gc import CollectionRunning, GCOptions, collect
from dockyard.storage.registry import Registry
from dockyard.testing.coord_suite import ManualClock
from dockyard.testing.stepping import SteppingCoordinator

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
NOW = GCOptions(grace_seconds=0.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "filesystem"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    clock = ManualClock(time.time())  # GC liveness is the coordinator's records, by this clock
    if request.param == "memory":
        return Registry(MemoryDriver(), coordinator=MemoryCoordinator(clock))
    coordinator = LocalCoordinator(str(tmp_path / LOCAL_AREA), clock)
    return Registry(FilesystemDriver(str(tmp_path), fsync=False), coordinator=coordinator)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def blob(registry: Registry, name: str, data: bytes) -> dict[str, object]:
    digest = Digest.of(data)
    upload = await registry.uploads.start(name)
    await registry.uploads.finish(name, upload, digest, _body(data))
    return {"mediaType": "application/octet-stream", "digest": str(digest), "size": len(data)}


async def image(
    registry: Registry, name: str, tag: str | None, *layers: bytes, extra: dict[str, object] | None = None
) -> Digest:
    config = await blob(registry, name, json.dumps({"tag": tag, "layers": len(layers)}).encode())
    descs = [await blob(registry, name, data) for data in layers]
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI, "config": config, "layers": descs, **(extra or {})}
    ).encode()
    digest = Digest.of(body)
    return (await registry.put_manifest(name, tag or digest, body, OCI)).digest


async def index(registry: Registry, name: str, tag: str, children: list[Digest]) -> Digest:
    manifests = []
    for child in children:
        _, body = await registry.manifests.get(name, child)
        manifests.append({"mediaType": OCI, "digest": str(child), "size": len(body)})
    body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}).encode()
    return (await registry.put_manifest(name, tag, body, INDEX)).digest


def age(registry: Registry, seconds: float = 60.0) -> None:
    """Let ``seconds`` pass on the coordinator's clock: everything referenced so far is that much
    older (as if pushed a while ago). Storage timestamps stay as they are."""
    clock = getattr(registry.coordinator, "clock", None)
    assert isinstance(clock, ManualClock)
    clock.advance(seconds)


def age_storage(registry: Registry, seconds: float = 60.0) -> None:
    """Make every stored file look ``seconds`` older, by the storage's own clock (which only the
    driver's leftovers of interrupted writes go by)."""
    driver = registry.driver.inner
    if isinstance(driver, MemoryDriver):
        for path, (buf, mtime) in list(driver.files.items()):
            driver.files[path] = (buf, mtime - seconds)
        return
    assert isinstance(driver, FilesystemDriver)
    for directory, _, files in os.walk(driver.root):
        for name in files:
            full = os.path.join(directory, name)
            st = os.stat(full)
            os.utime(full, (st.st_atime - seconds, st.st_mtime - seconds))


async def has_blob(registry: Registry, data: bytes) -> bool:
    return await registry.blobs.size_global(Digest.of(data)) is not None


async def pulls(registry: Registry, name: str, reference: str | Digest) -> bool:
    """The manifest and everything it references are readable."""
    try:
        _, _, body = await registry.get_manifest(name, reference)
    except DomainError:
        return False
    doc = json.loads(body)
    for child in doc.get("manifests", []):
        if not await pulls(registry, name, Digest.parse(child["digest"])):
            return False
    for desc in [doc.get("config"), *doc.get("layers", [])]:
        if desc and await registry.blobs.size_global(Digest.parse(desc["digest"])) is None:
            return False
    return True


async def test_frees_unreferenced_blobs_and_keeps_images(registry: Registry) -> None:
    kept = await image(registry, "app", "v1", b"shared", b"only-v1")
    doomed = await image(registry, "app", "v2", b"shared", b"only-v2")
    await blob(registry, "app", b"orphan upload")
    await registry.delete_manifest("app", doomed)
    age(registry)
    report = await collect(registry, NOW)
    assert await pulls(registry, "app", "v1") and await pulls(registry, "app", kept)
    assert await has_blob(registry, b"shared")
    assert not await has_blob(registry, b"only-v2") and not await has_blob(registry, b"orphan upload")
    freed = {d["digest"] for d in report.blobs_deleted}
    assert str(Digest.of(b"only-v2")) in freed and str(doomed) in freed
    assert report.bytes_freed == sum(int(d["size"]) for d in report.blobs_deleted) > 0
    # Links to deleted blobs are gone too.
    assert not await registry.blobs.is_linked("app", Digest.of(b"orphan upload"))
    age(registry)
    again = await collect(registry, NOW)
    assert again.blobs_deleted == []


async def test_dry_run_deletes_nothing(registry: Registry) -> None:
    await image(registry, "app", "v1", b"layer")
    await blob(registry, "app", b"orphan")
    age(registry)
    report = await collect(registry, GCOptions(dry_run=True, grace_seconds=0.0))
    assert [d["digest"] for d in report.blobs_deleted] == [str(Digest.of(b"orphan"))]
    assert report.bytes_freed == len(b"orphan")
    assert await has_blob(registry, b"orphan")


async def test_grace_period_keeps_fresh_uploads(registry: Registry) -> None:
    await blob(registry, "app", b"pushed a moment ago, manifest still to come")
    age(registry, 600)
    report = await collect(registry, GCOptions(grace_seconds=3600))
    assert report.blobs_deleted == [] and report.kept_recent == 1
    assert await has_blob(registry, b"pushed a moment ago, manifest still to come")


async def test_untagged_revisions_survive_without_the_flag(registry: Registry) -> None:
    first = await image(registry, "app", "latest", b"old layer")
    await image(registry, "app", "latest", b"new layer")
    age(registry)
    await collect(registry, NOW)
    assert await pulls(registry, "app", first) and await has_blob(registry, b"old layer")


async def test_overwritten_tag_frees_old_layers_with_delete_untagged(registry: Registry) -> None:
    first = await image(registry, "app", "latest", b"old layer")
    second = await image(registry, "app", "latest", b"new layer")
    age(registry)
    report = await collect(registry, GCOptions(delete_untagged=True, grace_seconds=0.0))
    assert report.manifests_deleted == [{"repository": "app", "digest": str(first)}]
    assert not await has_blob(registry, b"old layer")
    assert await pulls(registry, "app", "latest") and await pulls(registry, "app", second)
    assert not await registry.manifests.exists("app", first)


async def test_index_children_and_referrers_of_kept_subjects_are_kept(registry: Registry) -> None:
    amd = await image(registry, "multi", None, b"amd64 layer")
    arm = await image(registry, "multi", None, b"arm64 layer")
    top = await index(registry, "multi", "latest", [amd, arm])
    _, body = await registry.manifests.get("multi", top)
    subject = {"mediaType": INDEX, "digest": str(top), "size": len(body)}
    signature = await image(
        registry, "multi", None, b"signature", extra={"subject": subject, "artifactType": "application/x-sig"}
    )
    orphan_sig = await image(
        registry,
        "multi",
        None,
        b"signature of nothing",
        extra={"subject": {"mediaType": OCI, "digest": str(Digest.of(b"gone")), "size": 4}},
    )
    age(registry)
    await collect(registry, GCOptions(delete_untagged=True, grace_seconds=0.0))
    assert await pulls(registry, "multi", "latest")
    assert await pulls(registry, "multi", signature)
    assert [d.digest for d in await registry.manifests.referrers("multi", top)] == [signature]
    assert not await registry.manifests.exists("multi", orphan_sig)
    assert not await has_blob(registry, b"signature of nothing")


async def test_shared_blobs_across_repositories(registry: Registry) -> None:
    await image(registry, "one", "v1", b"base layer", b"one")
    gone = await image(registry, "two", "v1", b"base layer", b"two")
    await registry.delete_manifest("two", gone)
    age(registry)
    report = await collect(registry, NOW)
    assert await pulls(registry, "one", "v1")
    assert not await has_blob(registry, b"two")
    assert report.repositories_removed == ["two"]
    assert await registry.catalog.names() == ["one"]


async def test_one_collection_at_a_time(registry: Registry) -> None:
    for i in range(5):
        await image(registry, f"r{i}", "v1", b"layer %d" % i)
    results = await asyncio.gather(*(collect(registry, NOW) for _ in range(3)), return_exceptions=True)
    assert sum(isinstance(r, CollectionRunning) for r in results) >= 1
    assert any(not isinstance(r, BaseException) for r in results)


@pytest.fixture
def stepper(registry: Registry) -> SteppingCoordinator:
    """The registry's coordinator behind barriers the race tests place (same locks, same clock)."""
    wrapped = SteppingCoordinator(registry.coordinator)
    wrapped.clock = getattr(registry.coordinator, "clock", None)  # type: ignore[attr-defined]
    registry.coordinator = registry.uploads.coordinator = wrapped
    return wrapped


async def _old_unreferenced_layer(registry: Registry, name: str) -> tuple[bytes, Digest]:
    """A config and a layer uploaded long ago that no manifest references yet, and the manifest
    that will: the collection's candidates, and the push that races it."""
    config = await blob(registry, name, b'{"config": 1}')
    desc = await blob(registry, name, b"the reused layer")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI, "config": config, "layers": [desc]}).encode()
    age(registry)
    return body, Digest.of(b"the reused layer")


async def _settle() -> None:
    """Give a caller that should be waiting every chance to get past its lock anyway."""
    for _ in range(50):
        await asyncio.sleep(0.001)


async def test_push_between_the_mark_and_the_sweep_keeps_its_blobs(
    registry: Registry, stepper: SteppingCoordinator
) -> None:
    """The mark has found the layer unreferenced; the push completes before the sweep batch: the
    batch's re-check must see the push's fresh record and keep the layer."""
    body, layer = await _old_unreferenced_layer(registry, "race")
    sweep = stepper.pause("gc", shared=False, at="before", occurrence=2)  # 1: barrier, 2: blob batch
    collection = asyncio.ensure_future(collect(registry, NOW))
    await sweep.reached()
    await registry.put_manifest("race", "v1", body, OCI)
    sweep.release()
    report = await collection
    assert await pulls(registry, "race", "v1")
    assert str(layer) not in {b["digest"] for b in report.blobs_deleted}
    assert report.kept_recent == 2  # the config and the layer, both re-checked as fresh


async def test_a_blob_pushed_again_after_the_sweep_keeps_its_link(
    registry: Registry, stepper: SteppingCoordinator
) -> None:
    """The blob batch deleted an old unreferenced layer; before the link sweep, the client (whose
    manifest was refused) uploads the layer again and pushes the manifest: the repository's link,
    written anew by the upload, must survive the link sweep."""
    body, layer = await _old_unreferenced_layer(registry, "again")
    links = stepper.pause("gc", shared=False, at="before", occurrence=3)  # barrier, blob batch, links
    collection = asyncio.ensure_future(collect(registry, NOW))
    await links.reached()
    assert not await has_blob(registry, b"the reused layer")
    await blob(registry, "again", b'{"config": 1}')
    await blob(registry, "again", b"the reused layer")
    await registry.put_manifest("again", "v1", body, OCI)
    links.release()
    report = await collection
    assert str(layer) in {b["digest"] for b in report.blobs_deleted}
    assert await registry.blobs.stat("again", layer) == len(b"the reused layer")
    assert report.layer_links_deleted == 0


async def test_a_sweep_batch_waits_for_a_push_inside_its_shared_section(
    registry: Registry, stepper: SteppingCoordinator
) -> None:
    """The push holds the shared lock when the sweep batch asks for it exclusively: the batch waits
    until the push has published, then keeps what the push references."""
    body, layer = await _old_unreferenced_layer(registry, "race")
    sweep = stepper.pause("gc", shared=False, at="before", occurrence=2)
    collection = asyncio.ensure_future(collect(registry, NOW))
    await sweep.reached()
    inside = stepper.pause("gc", shared=True, at="inside")
    push = asyncio.ensure_future(registry.put_manifest("race", "v1", body, OCI))
    await inside.reached()
    sweep.release()
    await _settle()
    assert stepper.acquired[("gc", False)] == 1, "the sweep batch got the lock while a push held it"
    inside.release()
    await push
    report = await collection
    assert stepper.acquired[("gc", False)] >= 2
    assert await pulls(registry, "race", "v1")
    assert str(layer) not in {b["digest"] for b in report.blobs_deleted}


async def test_a_push_waits_for_a_sweep_batch_and_then_fails_cleanly(
    registry: Registry, stepper: SteppingCoordinator
) -> None:
    """The sweep batch holds the lock when the push arrives: the push waits, the batch deletes the
    old layer, and the push then finds it missing and is refused: no dangling manifest."""
    body, layer = await _old_unreferenced_layer(registry, "race")
    batch = stepper.pause("gc", shared=False, at="inside", occurrence=2)
    collection = asyncio.ensure_future(collect(registry, NOW))
    await batch.reached()
    shared_before = stepper.acquired[("gc", True)]
    push = asyncio.ensure_future(registry.put_manifest("race", "v1", body, OCI))
    await _settle()
    assert not push.done() and stepper.acquired[("gc", True)] == shared_before
    batch.release()
    report = await collection
    assert str(layer) in {b["digest"] for b in report.blobs_deleted}
    with pytest.raises(ReferencesMissing):
        await push
    assert not await registry.manifests.exists("race", Digest.of(body))
    assert await registry.tags.resolve("race", "v1") is None


async def test_referenced_child_cannot_be_deleted_without_force(registry: Registry) -> None:
    child = await image(registry, "multi", None, b"child")
    top = await index(registry, "multi", "latest", [child])
    with pytest.raises(ManifestReferenced) as info:
        await registry.delete_manifest("multi", child)
    assert info.value.parents == [str(top)] and str(top) in str(info.value)
    await registry.delete_manifest("multi", child, force=True)
    assert not await registry.manifests.exists("multi", child)


async def test_delete_repository(registry: Registry) -> None:
    await image(registry, "keep", "v1", b"shared")
    await image(registry, "drop/me", "v1", b"shared", b"unique")
    await registry.delete_repository("drop/me")
    assert await registry.catalog.names() == ["keep"]
    with pytest.raises(NameUnknown):
        await registry.delete_repository("drop/me")
    age(registry)
    report = await collect(registry, NOW)
    assert not await has_blob(registry, b"unique") and await has_blob(registry, b"shared")
    assert report.repositories_removed == []
    assert not await registry.driver.exists(paths.repository("drop/me"))


async def test_leftovers_of_a_crash_are_removed(registry: Registry) -> None:
    """A delete or write killed half way leaves a ``.tmp-`` entry; a collection removes it once old."""
    driver = registry.driver.inner
    if not isinstance(driver, FilesystemDriver):
        pytest.skip("only the filesystem driver's writes and deletes leave temporaries")
    kept = await image(registry, "app", "v1", b"kept")
    half_deleted = Path(
        driver.root + paths.blob_dir(Digest.of(b"half deleted")) + ".tmp-0123456789abcdef/data"
    )
    half_written = Path(driver.root + paths.revision_link("app", kept) + ".tmp-fedcba9876543210")
    half_deleted.parent.mkdir(parents=True)
    half_deleted.write_bytes(b"half deleted")
    half_written.write_bytes(b"sha256:")
    report = await collect(registry, NOW)
    # A delete's leftover directory goes at once; a write's temporary file may be in progress.
    assert report.temporaries_removed == 1 and not half_deleted.exists()
    assert half_written.exists()
    age(registry)
    age_storage(registry)
    report = await collect(registry, NOW)
    assert report.temporaries_removed == 1 and not half_written.exists()
    assert await pulls(registry, "app", kept)
