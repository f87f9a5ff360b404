"""The scan queue (store files and PostgreSQL), the push subscriber and the service's drain."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.coord import LOCAL_AREA
from dockyard.coord.local import LocalCoordinator
from dockyard.coord.postgres import PostgresCoordinator
from dockyard.errors import ManifestUnknown
from dockyard.events import ManifestPushed, TagDeleted
from dockyard.events.request import RequestInfo, enter_request, leave_request
from dockyard.scan.queue import PgScanQueue, QueuedScan, ScanQueue, StoreScanQueue
from dockyard.scan.scanner import Scanner
from dockyard.scan.service import ScanService
from dockyard.scan.subscriber import ScanSubscriber
from dockyard.scan.syft import Syft
from dockyard.storage.drivers.checked import checked
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.registry import Registry
from dockyard.testing.images import build_image
from tests.scan.test_sbom import push

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["store", "postgres"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ScanQueue]:
    if request.param == "store":
        yield StoreScanQueue(checked(FilesystemDriver(str(tmp_path), fsync=False)))
        return
    pg = PostgresCoordinator(request.getfixturevalue("dsn"))
    try:
        yield PgScanQueue(pg)
    finally:
        await pg.close()


async def test_queue_keeps_jobs_until_finished_and_a_requeue_during_a_scan(queue: ScanQueue) -> None:
    first = QueuedScan("a", "sha256:" + "1" * 64, "push", 10.0)
    second = QueuedScan("b", "sha256:" + "2" * 64, "demand", 5.0)
    await queue.add(first)
    await queue.add(second)
    assert await queue.pending() == [second, first]  # oldest first
    assert await queue.pending(1) == [second]
    assert await queue.result("a", first.digest) is None

    await queue.finish(second, {"state": "done", "images": []}, 20.0)
    assert await queue.pending() == [first]
    assert await queue.result("b", second.digest) == {
        "repository": "b",
        "digest": second.digest,
        "finished": 20.0,
        "state": "done",
        "images": [],
    }

    # Pushed again while it was being scanned: the finished scan leaves the new entry queued.
    again = QueuedScan("a", first.digest, "push", 30.0)
    await queue.add(again)
    await queue.finish(first, {"state": "failed", "images": []}, 31.0)
    assert await queue.pending() == [again]
    assert (await queue.result("a", first.digest) or {})["state"] == "failed"
    # Every image's last result, what a rescan walks when the advisory database changes.
    listed = sorted((r["repository"], r["state"]) for r in await queue.results())
    assert listed == [("a", "failed"), ("b", "done")]


async def test_store_queue_survives_a_restart(tmp_path: Path) -> None:
    job = QueuedScan("a", "sha256:" + "3" * 64, "push", 1.0)
    await StoreScanQueue(checked(FilesystemDriver(str(tmp_path), fsync=False))).add(job)
    assert await StoreScanQueue(checked(FilesystemDriver(str(tmp_path), fsync=False))).pending() == [job]
    assert await StoreScanQueue(checked(FilesystemDriver(str(tmp_path / "empty")))).pending() == []
    assert await StoreScanQueue(checked(FilesystemDriver(str(tmp_path / "empty")))).results() == []


async def test_subscriber_queues_pushed_images_durably_and_never_referrers(tmp_path: Path) -> None:
    queue = StoreScanQueue(checked(FilesystemDriver(str(tmp_path), fsync=False)))
    subscriber = ScanSubscriber(queue, clock=lambda: 7.0)
    image = "sha256:" + "4" * 64
    info = RequestInfo("r1", "127.0.0.1:1", "h", "PUT", "test")
    token = enter_request(info)
    try:
        for tag in ("v1", "latest"):  # one push with two tags: queued once
            subscriber.emit(ManifestPushed("app", image, OCI, tag))
        subscriber.emit(ManifestPushed("app", "sha256:" + "5" * 64, OCI, None, subject=image))  # an SBOM
        subscriber.emit(
            ManifestPushed("app", "sha256:" + "6" * 64, "application/vnd.oci.empty.v1+json", None)
        )
        subscriber.emit(TagDeleted("app", "v1"))
    finally:
        leave_request(token)
    assert len(info.pending) == 1  # the response waits for the queue write
    await asyncio.gather(*info.pending)
    assert await queue.pending() == [QueuedScan("app", image, "push", 7.0)]

    subscriber.emit(ManifestPushed("app", "sha256:" + "7" * 64, OCI, None))  # outside a request
    await subscriber.settle()  # nobody else awaits that write
    assert len(await queue.pending()) == 2


async def test_a_drain_waits_for_the_queue_writes_the_subscriber_started(tmp_path: Path) -> None:
    """A push outside a request (a proxy's fill) has its queue write awaited by nobody: a drain
    started right after it scans the image instead of finding the queue empty."""
    coordinator = LocalCoordinator(str(tmp_path / LOCAL_AREA))
    driver = FilesystemDriver(str(tmp_path), fsync=False)
    registry = Registry(driver, coordinator=coordinator)
    gate = asyncio.Event()

    class GatedQueue(StoreScanQueue):
        async def add(self, job: QueuedScan) -> None:
            await gate.wait()
            await super().add(job)

    queue = GatedQueue(checked(driver))
    subscriber = ScanSubscriber(queue)
    scanner = Scanner(registry, Syft("/bin/false"))
    service = ScanService(registry, queue, scanner, coordinator, intake=subscriber)
    subscriber.emit(ManifestPushed("app", "sha256:" + "8" * 64, OCI, None))
    drain = asyncio.ensure_future(service.drain())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not drain.done()  # waiting for the write
    gate.set()
    assert await drain == 1  # the image is gone from the store: scanned as "gone"
    await coordinator.close()


async def test_service_requests_drains_and_skips_what_another_scanner_holds(tmp_path: Path) -> None:
    coordinator = LocalCoordinator(str(tmp_path / LOCAL_AREA))
    driver = FilesystemDriver(str(tmp_path), fsync=False)
    registry = Registry(driver, coordinator=coordinator)
    queue = StoreScanQueue(checked(driver))
    service = ScanService(
        registry, queue, Scanner(registry, Syft("/bin/false")), coordinator, clock=time.time
    )
    with pytest.raises(ManifestUnknown):
        await service.request("app", "missing")
    image = build_image("app", "v1", [b"not a tar"], {"architecture": "amd64", "os": "linux"})
    digest = await push(registry, image, "v1")
    job = await service.request("app", "v1")
    assert job.digest == str(digest)
    status = await service.status("app", job.digest)
    assert status["queued"] == job.to_json() and status["result"] is None

    async with coordinator.lock(f"scan-{job.key}", wait=False):  # another scanner has it
        assert await service.drain() == 0
    assert await queue.pending() == [job]

    assert await service.drain() == 1
    status = await service.status("app", job.digest)
    assert status["queued"] is None
    assert status["result"]["state"] == "failed"
    assert "syft exited with status 1" in status["result"]["images"][0]["error"]
    assert await service.drain() == 0
