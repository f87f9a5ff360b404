"""What an upload asks of the coordinator, which a push pays for once per blob: a session that
never held data has no record to create or remove, and a one-request push (``POST ?digest=``,
under an id made for it) takes no session lock. A session with data keeps both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest

from dockyard.coord.memory import MemoryCoordinator
from dockyard.oci.digest import Digest
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Counting(MemoryCoordinator):
    def __init__(self) -> None:
        super().__init__()
        self.locks: list[str] = []
        self.deletes = 0

    def lock(
        self, name: str, *, shared: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[None]:
        self.locks.append(name)
        return super().lock(name, shared=shared, wait=wait)

    async def delete_session(self, session_id: str) -> bool:
        self.deletes += 1
        return await super().delete_session(session_id)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _session_locks(coordinator: Counting) -> list[str]:
    return [n for n in coordinator.locks if n.startswith("upload-")]


async def test_a_blob_whole_in_the_put_makes_and_removes_no_record() -> None:
    coordinator = Counting()
    registry = Registry(MemoryDriver(), coordinator=coordinator)
    upload = await registry.uploads.start("app")
    await registry.uploads.append("app", upload, _body(b""))  # an empty PATCH: nothing to record
    assert await coordinator.get_session(upload) is None
    await registry.uploads.finish("app", upload, Digest.of(b"whole"), _body(b"whole"))
    assert coordinator.deletes == 0
    assert len(_session_locks(coordinator)) == 2  # the PATCH's and the PUT's


async def test_a_session_with_data_is_recorded_and_its_record_removed() -> None:
    coordinator = Counting()
    registry = Registry(MemoryDriver(), coordinator=coordinator)
    upload = await registry.uploads.start("app")
    await registry.uploads.append("app", upload, _body(b"part"))
    assert (await coordinator.get_session(upload)) is not None
    await registry.uploads.finish("app", upload, Digest.of(b"part2"), _body(b"2"))
    assert coordinator.deletes == 1
    assert await coordinator.get_session(upload) is None


async def test_a_one_request_push_takes_no_session_lock() -> None:
    coordinator = Counting()
    registry = Registry(MemoryDriver(), coordinator=coordinator)
    data = b"monolithic"
    assert await registry.uploads.monolithic("app", Digest.of(data), _body(data)) == len(data)
    assert _session_locks(coordinator) == []
    assert coordinator.deletes == 0
    assert await registry.blobs.get_bytes(Digest.of(data)) == data
