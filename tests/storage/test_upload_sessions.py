"""Upload sessions keep a record in the coordinator (offset, last activity); the purge goes by it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.coord import LOCAL_AREA
from dockyard.coord.local import LocalCoordinator
from dockyard.coord.memory import MemoryCoordinator
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.registry import Registry
from dockyard.testing.coord_suite import ManualClock

pytestmark = pytest.mark.anyio
WEEK = 7 * 86400.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(time.time())


@pytest.fixture(params=["memory", "filesystem"])
def registry(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Registry:
    if request.param == "memory":
        return Registry(MemoryDriver(), coordinator=MemoryCoordinator(clock))
    coordinator = LocalCoordinator(str(tmp_path / LOCAL_AREA), clock)
    return Registry(FilesystemDriver(str(tmp_path), fsync=False), coordinator=coordinator)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_session_records_its_progress_and_goes_when_finished(
    registry: Registry, clock: ManualClock
) -> None:
    upload = await registry.uploads.start("app")
    # No record until the first chunk: the data's timestamp covers a session that has none.
    assert await registry.coordinator.get_session(upload) is None
    await registry.uploads.append("app", upload, _body(b"hello "))
    started = await registry.coordinator.get_session(upload)
    assert started is not None and (started.repository, started.offset) == ("app", 6)
    clock.advance(30)
    await registry.uploads.append("app", upload, _body(b"wide "))
    record = await registry.coordinator.get_session(upload)
    assert record is not None and record.offset == 11 and record.updated_at == started.updated_at + 30
    await registry.uploads.finish("app", upload, Digest.of(b"hello wide world"), _body(b"world"))
    assert await registry.coordinator.get_session(upload) is None
    cancelled = await registry.uploads.start("app")
    await registry.uploads.cancel("app", cancelled)
    assert await registry.coordinator.get_session(cancelled) is None


async def test_the_purge_goes_by_the_record_where_storage_has_no_news(
    registry: Registry, clock: ManualClock
) -> None:
    active = await registry.uploads.start("app")
    idle = await registry.uploads.start("app")
    for upload in (active, idle):  # each gets a record with its first chunk
        await registry.uploads.append("app", upload, _body(b"begun "))
    assert await registry.coordinator.get_session(idle) is not None
    # A session another tool started has no record: its data's timestamp decides.
    foreign = "distribution-started"
    await registry.driver.put_many(
        [(paths.upload_data("app", foreign), b"x"), (paths.upload_startedat("app", foreign), b"then")]
    )
    clock.advance(WEEK + 60)  # a week on the coordinator's clock...
    await registry.uploads.append("app", active, _body(b"still going"))  # ...and one was active
    later = time.time() + WEEK + 60  # storage timestamps (the driver's clock) look a week old too
    assert await registry.purge_uploads(WEEK, later) == 2
    assert await registry.uploads.size("app", active) == len(b"begun still going")
    for gone in (idle, foreign):
        assert not await registry.driver.exists(paths.upload_data("app", gone))
    assert await registry.coordinator.get_session(idle) is None
    assert await registry.coordinator.get_session(active) is not None


async def test_fresh_data_keeps_a_session_whatever_its_record(registry: Registry, clock: ManualClock) -> None:
    upload = await registry.uploads.start("app")
    clock.advance(WEEK + 60)
    assert await registry.purge_uploads(WEEK, time.time()) == 0
    assert await registry.driver.exists(paths.upload_data("app", upload))


async def test_records_of_sessions_deleted_elsewhere_are_dropped(
    registry: Registry, clock: ManualClock
) -> None:
    upload = await registry.uploads.start("gone")
    await registry.uploads.append("gone", upload, _body(b"begun"))
    assert await registry.coordinator.get_session(upload) is not None
    await registry.delete_repository("gone")
    clock.advance(WEEK + 60)
    assert await registry.purge_uploads(WEEK, time.time()) == 0
    assert await registry.coordinator.get_session(upload) is None


@pytest.mark.parametrize("stored", [b"md5", b"\xff\xfe"])
async def test_an_unreadable_session_algorithm_means_sha256(registry: Registry, stored: bytes) -> None:
    """A ``digestalgorithm`` file this registry did not write (an algorithm it cannot compute, or
    not text) reads as sha256, the default; the closing digest is verified either way."""
    upload_id = await registry.start_upload("algo", "sha512")
    assert await registry.driver.get_content(paths.upload_algorithm("algo", upload_id)) == b"sha512"
    await registry.driver.put_content(paths.upload_algorithm("algo", upload_id), stored)
    fresh = Registry(registry.driver, coordinator=registry.coordinator)  # another worker: no running hash
    assert await fresh.uploads._algorithm("algo", upload_id) == "sha256"
    await fresh.append_upload("algo", upload_id, _body(b"data"), start=0)
    digest = Digest.of(b"data", "sha512")
    assert await fresh.finish_upload("algo", upload_id, digest, None) == 4
    assert await fresh.stat_blob("algo", digest) == 4
