"""One request at a time writes to an upload session: the coordinator's lock on the upload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.coord import LOCAL_AREA
from dockyard.coord.local import LocalCoordinator
from dockyard.coord.memory import MemoryCoordinator
from dockyard.errors import UploadInUse
from dockyard.oci.digest import Digest
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "filesystem"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "memory":
        return Registry(MemoryDriver(), coordinator=MemoryCoordinator())
    coordinator = LocalCoordinator(str(tmp_path / LOCAL_AREA))
    return Registry(FilesystemDriver(str(tmp_path), fsync=False), coordinator=coordinator)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_second_writer_is_refused_while_the_first_writes(registry: Registry) -> None:
    upload = await registry.uploads.start("app")
    first_chunk_sent = asyncio.Event()
    go_on = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"first "
        first_chunk_sent.set()
        await go_on.wait()
        yield b"chunk"

    first = asyncio.ensure_future(registry.uploads.append("app", upload, slow()))
    await first_chunk_sent.wait()
    await asyncio.sleep(0)  # the writer is opened while the first bytes arrive
    with pytest.raises(UploadInUse) as refused:
        await registry.uploads.append("app", upload, _one(b"intruder"))
    assert refused.value.upload_id == upload
    go_on.set()
    assert await first == len(b"first chunk")
    # The lock went with the first request: the session goes on, and finishes.
    assert await registry.uploads.append("app", upload, _one(b"!")) == len(b"first chunk!")
    digest = Digest.of(b"first chunk!")
    assert await registry.uploads.finish("app", upload, digest, None) == len(b"first chunk!")
    assert await registry.blobs.size_global(digest) == len(b"first chunk!")


async def test_other_sessions_are_not_held_up(registry: Registry) -> None:
    one, two = await registry.uploads.start("app"), await registry.uploads.start("app")
    go_on = asyncio.Event()

    async def waiting() -> AsyncIterator[bytes]:
        yield b"a"
        await go_on.wait()

    first = asyncio.ensure_future(registry.uploads.append("app", one, waiting()))
    await asyncio.sleep(0.01)
    assert await registry.uploads.append("app", two, _one(b"b")) == 1
    go_on.set()
    assert await first == 1
