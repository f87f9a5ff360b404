"""The registry model's after-commit events, the fan-out, and pull times as their subscriber."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from dockyard.browse.pullevents import PullSubscriber
from dockyard.browse.pulls import PullLog
from dockyard.coord.memory import MemoryCoordinator
from dockyard.errors import ManifestInvalid, ManifestUnknown
from dockyard.events import (
    BlobPushed,
    Event,
    Fanout,
    ManifestDeleted,
    ManifestPulled,
    ManifestPushed,
    TagDeleted,
    TagResolved,
)
from dockyard.oci.digest import Digest
from dockyard.storage.drivers.checked import checked
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.registry import Registry

OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _push_blob(registry: Registry, name: str, data: bytes) -> dict[str, object]:
    digest = Digest.of(data)
    await registry.uploads.finish(name, await registry.uploads.start(name), digest, _chunks(data))
    return {"mediaType": "application/octet-stream", "digest": str(digest), "size": len(data)}


async def _manifest(registry: Registry, name: str) -> bytes:
    config = await _push_blob(registry, name, b'{"os":"linux"}')
    layer = await _push_blob(registry, name, b"layer")
    return json.dumps({"schemaVersion": 2, "mediaType": OCI, "config": config, "layers": [layer]}).encode()


@pytest.mark.anyio
async def test_changes_are_told_after_they_are_committed() -> None:
    recorder = Recorder()
    registry = Registry(MemoryDriver(), coordinator=MemoryCoordinator(), events=recorder)
    body = await _manifest(registry, "a/b")
    digest = str(Digest.of(body))
    assert recorder.events == [
        BlobPushed("a/b", str(Digest.of(b'{"os":"linux"}')), 14),
        BlobPushed("a/b", str(Digest.of(b"layer")), 5),
    ]
    recorder.events.clear()

    await registry.put_manifest("a/b", "v1", body, OCI)
    await registry.put_manifest("a/b", "v2", body, OCI)
    assert await registry.mount_blob("c/d", Digest.of(b"layer"), "a/b")
    await registry.delete_manifest("a/b", "v2")
    await registry.delete_manifest("a/b", Digest.of(body))
    assert recorder.events == [
        ManifestPushed("a/b", digest, OCI, "v1", len(body)),
        ManifestPushed("a/b", digest, OCI, "v2", len(body)),
        BlobPushed("c/d", str(Digest.of(b"layer")), 5, mounted=True),
        TagDeleted("a/b", "v2"),
        ManifestDeleted("a/b", digest),
        TagDeleted("a/b", "v1"),
    ]


@pytest.mark.anyio
async def test_failed_changes_and_plain_reads_tell_nothing() -> None:
    recorder = Recorder()
    registry = Registry(MemoryDriver(), coordinator=MemoryCoordinator(), events=recorder)
    orphan = json.dumps({"schemaVersion": 2, "mediaType": OCI, "config": {}, "layers": []}).encode()
    with pytest.raises(ManifestInvalid):
        await registry.put_manifest("a/b", "v1", orphan, OCI)
    with pytest.raises(ManifestUnknown):
        await registry.delete_manifest("a/b", "v1")
    body = await _manifest(registry, "a/b")
    await registry.put_manifest("a/b", "v1", body, OCI)
    recorder.events.clear()
    await registry.get_manifest("a/b", "v1")  # the UI and GC read this way: no pull
    assert recorder.events == []


@pytest.mark.anyio
async def test_pull_manifest_tells_gets_as_pulls_and_heads_by_tag_as_resolutions() -> None:
    recorder = Recorder()
    registry = Registry(MemoryDriver(), coordinator=MemoryCoordinator(), events=recorder)
    body = await _manifest(registry, "a/b")
    await registry.put_manifest("a/b", "v1", body, OCI)
    digest = Digest.of(body)
    recorder.events.clear()
    await registry.pull_manifest("a/b", "v1", head=True)
    await registry.pull_manifest("a/b", digest, head=True)
    await registry.pull_manifest("a/b", digest, head=False)
    await registry.pull_manifest("a/b", "v1", head=False)
    assert recorder.events == [
        TagResolved("a/b", "v1", str(digest)),
        ManifestPulled("a/b", str(digest), None, OCI, len(body)),
        ManifestPulled("a/b", str(digest), "v1", OCI, len(body)),
    ]


def test_a_failing_subscriber_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def emit(self, event: Event) -> None:
            raise RuntimeError("listener down")

    recorder = Recorder()
    event = TagDeleted("a/b", "v1")
    Fanout([Broken(), recorder]).emit(event)
    assert recorder.events == [event]
    assert "an event subscriber failed" in caplog.text


def test_a_head_by_tag_credits_the_next_get_by_digest_within_the_window() -> None:
    now = [100.0]
    pulls = PullLog(checked(MemoryDriver()), MemoryCoordinator(), read_only=True)
    subscriber = PullSubscriber(pulls, window=60.0, clock=lambda: now[0])
    subscriber.emit(TagResolved("a/b", "v1", "sha256:1"))
    subscriber.emit(TagResolved("a/b", "v2", "sha256:2"))
    assert pulls.of_tag("a/b", "v1") is None  # a HEAD alone is no pull
    subscriber.emit(ManifestPulled("a/b", "sha256:1", None))
    assert pulls.of_tag("a/b", "v1") is not None and pulls.of_digest("a/b", "sha256:1") is not None
    subscriber.emit(ManifestPulled("other/repo", "sha256:2", None))  # another repository's digest
    assert pulls.of_tag("other/repo", "v2") is None and pulls.of_tag("a/b", "v2") is None
    now[0] += 61.0
    subscriber.emit(ManifestPulled("a/b", "sha256:2", None))  # too late: the digest only
    assert pulls.of_tag("a/b", "v2") is None and pulls.of_digest("a/b", "sha256:2") is not None


@pytest.mark.anyio
async def test_pull_counts_survive_a_flush_and_add_up_across_logs() -> None:
    """Two workers' logs on one store: counts per repository and tag add up in the shared file."""
    driver, coordinator = checked(MemoryDriver()), MemoryCoordinator()
    first, second = PullLog(driver, coordinator), PullLog(driver, coordinator)
    for log, times in ((first, 2), (second, 3)):
        for _ in range(times):
            log.record("a/b", "sha256:" + "1" * 64, "v1")
        log.record("a/b", "sha256:" + "1" * 64, None)
    assert first.count_of_repository("a/b") == 3  # its own, not yet flushed
    await first.flush()
    await second.flush()
    reader = PullLog(driver, coordinator)
    await reader.refresh()
    assert (reader.count_of_repository("a/b"), reader.count_of_tag("a/b", "v1")) == (7, 5)
    assert reader.count_of_repository("other") == 0


@pytest.mark.anyio
async def test_a_push_by_digest_with_tags_tells_one_push_per_tag() -> None:
    """As that many pushes by tag would (webhooks and the audit log name each tag); none: one
    untagged push. A sha512 push is told under its sha512 digest."""
    recorder = Recorder()
    registry = Registry(MemoryDriver(), coordinator=MemoryCoordinator(), events=recorder)
    body = await _manifest(registry, "a/b")
    recorder.events.clear()
    digest = Digest.of(body, "sha512")
    await registry.put_manifest("a/b", digest, body, OCI, tags=["1.2", "latest"])
    await registry.put_manifest("a/b", Digest.of(body), body, OCI)
    assert recorder.events == [
        ManifestPushed("a/b", str(digest), OCI, "1.2", len(body)),
        ManifestPushed("a/b", str(digest), OCI, "latest", len(body)),
        ManifestPushed("a/b", str(Digest.of(body)), OCI, None, len(body)),
    ]
    assert await registry.tags.resolve("a/b", "latest") == digest
