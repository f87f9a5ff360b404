"""The in-memory coordinator passes the shared suite (its peer is itself: one process)."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.coord.memory import MemoryCoordinator
from dockyard.coord.rwlock import RWLock
from dockyard.testing.coord_suite import CoordinatorSuite, ManualClock


class TestMemoryCoordinator(CoordinatorSuite):
    @pytest.fixture
    def coordinator(self, clock: ManualClock) -> MemoryCoordinator:
        return MemoryCoordinator(clock)

    @pytest.fixture
    def peer(self, coordinator: MemoryCoordinator) -> MemoryCoordinator:
        return coordinator


@pytest.mark.anyio
async def test_release_hands_the_lock_on_without_spawning_tasks() -> None:
    """The old lock notified waiters from a fire-and-forget task; this one resolves them in place."""
    lock = RWLock()
    await lock.acquire(shared=False)
    waiter = asyncio.ensure_future(lock.acquire(shared=True))
    await asyncio.sleep(0)
    before = len(asyncio.all_tasks())
    lock.release(shared=False)
    assert len(asyncio.all_tasks()) == before
    assert lock.readers == 1 and not lock.writer  # granted synchronously, before the waiter runs
    await waiter
    lock.release(shared=True)
    assert lock.idle


@pytest.mark.anyio
async def test_queued_writer_blocks_later_readers() -> None:
    lock = RWLock()
    await lock.acquire(shared=True)
    writer = asyncio.ensure_future(lock.acquire(shared=False))
    await asyncio.sleep(0)
    reader = asyncio.ensure_future(lock.acquire(shared=True))
    await asyncio.sleep(0)
    assert not writer.done() and not reader.done()
    lock.release(shared=True)
    await writer
    assert lock.writer and not reader.done()
    lock.release(shared=False)
    await reader
    assert lock.readers == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
