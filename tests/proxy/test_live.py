"""A reader of a fill running in its own process (``LiveSource``), driven step by step through the
fill's ``Progress``: bytes from memory as they arrive, from the spool once they left the memory
window, from the registry once committed and the spool is gone; never the last byte before the
commit, and an error (not a body) when the fill fails, stalls or loses its spool."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dockyard.oci.digest import Digest
from dockyard.proxy import inflight
from dockyard.proxy.inflight import FillFailed, Fills, Key, LiveSource, Meta, Progress, SpoolSource
from tests.proxy.conftest import Proxy, Upstream

pytestmark = pytest.mark.anyio
BLOB = bytes(range(256)) * 40  # 10,240 bytes
DIGEST = Digest.parse("sha256:" + hashlib.sha256(BLOB).hexdigest())
STORED = "docker.io/library/live"


@pytest.fixture
def fills(make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]) -> Fills:
    proxy = make_proxy({"docker.io": (make_upstream(), {})})
    found: Fills = proxy.services.model.fills  # type: ignore[attr-defined]
    return found


def source(fills: Fills, progress: Progress, patience: float = 30.0) -> LiveSource:
    return LiveSource(fills, Key(STORED, DIGEST), progress, len(BLOB), patience)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def commit(fills: Fills) -> None:
    """The registry holds BLOB: what the fill's commit leaves."""

    async def body() -> AsyncIterator[bytes]:
        yield BLOB

    await fills.registry.uploads.monolithic(STORED, DIGEST, body())


def spool(fills: Fills, data: bytes) -> None:
    with open(fills.spool.data(Key(STORED, DIGEST)), "wb") as f:
        f.write(data)


async def test_bytes_from_memory_then_the_spool_behind_the_window_and_last_byte_after_commit(
    fills: Fills, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inflight, "WINDOW", 1000)
    progress = Progress("f", len(BLOB))
    for i in range(0, 4000, 1000):  # four chunks arrive; the first three are spooled
        progress.add(BLOB[i : i + 1000])
    spool(fills, BLOB[:3000])
    progress.spooled_to(3000)
    assert progress.start == 3000  # what is spooled left the window, down to WINDOW bytes
    reading = asyncio.create_task(collect(source(fills, progress).read()))
    await asyncio.sleep(0.01)
    progress.add(BLOB[4000:])
    await asyncio.sleep(0.01)
    assert not reading.done()  # everything arrived, but the last byte waits for the commit
    progress.end(None)
    assert await reading == BLOB
    # A range, from the window alone.
    assert await collect(source(fills, progress).read(9000, 100)) == BLOB[9000:9100]


async def test_after_the_commit_a_reader_behind_the_window_reads_the_registry(
    fills: Fills, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inflight, "WINDOW", 1000)

    await commit(fills)
    progress = Progress("f", len(BLOB))
    progress.add(BLOB[:5000])
    progress.add(BLOB[5000:])
    progress.spooled_to(len(BLOB))
    progress.end(None)  # committed, and the spool removed (never written here)
    assert progress.start == 5000
    assert await collect(source(fills, progress).read()) == BLOB


@pytest.mark.parametrize("how", ["failed", "spool gone", "stalled"])
async def test_a_reader_gets_an_error_not_a_body(
    fills: Fills, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(inflight, "WINDOW", 1000)
    progress = Progress("f", len(BLOB))
    progress.add(BLOB[:2000])
    progress.add(BLOB[2000:4000])
    progress.spooled_to(2000)  # the first chunk left the window; the spool file does not exist
    got = bytearray()
    with pytest.raises(
        FillFailed, match={"failed": "failed", "spool gone": "gone", "stalled": "stalled"}[how]
    ):
        if how == "failed":
            progress.end("UpstreamFailed: the body broke off")
        patience = 0.05 if how == "stalled" else 30.0
        start = 2000 if how == "stalled" else 0
        async for chunk in source(fills, progress, patience).read(start):
            got += chunk
    assert len(got) < len(BLOB)


async def test_the_spool_descriptor_outlives_a_write_in_flight(tmp_path: object) -> None:
    """A fill that ends while its last spool write runs closes the descriptor only after it."""
    fd = os.open(os.path.join(str(tmp_path), "spool"), os.O_WRONLY | os.O_CREAT, 0o600)
    relay = inflight._Relay(fd, Progress("f", 10))
    relay.pending = asyncio.get_running_loop().create_future()
    relay.close()
    os.fstat(fd)  # still open
    relay.pending.set_result(None)
    await asyncio.sleep(0)  # the done callback runs
    with pytest.raises(OSError):
        os.fstat(fd)


async def test_behind_the_window_from_the_uploads_own_file_then_the_registry_once_it_moved(
    fills: Fills, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With a local upload file as the source (no spool copy): bytes behind the window come from
    it; once it is gone (it became the blob) before the fill ended, the reader waits for the end
    and reads the registry."""
    monkeypatch.setattr(inflight, "WINDOW", 1000)
    upload = tmp_path / "data"
    upload.write_bytes(BLOB[:3000])
    progress = Progress("f", len(BLOB), str(upload))
    for i in range(0, 4000, 1000):
        progress.add(BLOB[i : i + 1000])
    progress.spooled_to(3000)
    assert progress.start == 3000
    assert await collect(source(fills, progress).read(0, 3000)) == BLOB[:3000]  # from the file
    upload.unlink()
    reading = asyncio.create_task(collect(source(fills, progress).read()))
    await asyncio.sleep(0.02)
    assert not reading.done()  # the file moved, the fill has not ended: wait

    await commit(fills)
    progress.add(BLOB[4000:])
    progress.end(None)
    assert await reading == BLOB


async def test_another_process_reads_the_upload_file_once_the_fill_created_it(
    fills: Fills, tmp_path: Path
) -> None:
    key = Key(STORED, DIGEST)
    upload = tmp_path / "data"
    fills.spool.write_meta(key, Meta("f", len(BLOB), "filling", str(upload)))
    reader = SpoolSource(
        fills, key, "f", len(BLOB), 30.0, fills.spool.source(key, fills.spool.read_meta(key))
    )
    assert reader.source == str(upload)
    reading = asyncio.create_task(collect(reader.read()))
    await asyncio.sleep(0.05)  # not there yet: the reader polls, it does not give up
    assert not reading.done()
    upload.write_bytes(BLOB)

    await commit(fills)  # committed: the last byte may go
    assert await asyncio.wait_for(reading, 10) == BLOB
