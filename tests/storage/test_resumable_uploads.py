"""A chunked upload whose requests land on different processes: each takes the running hash from
the session's coordinator record, so no digest is computed by reading the data back; a state
that does not restore (corrupt, from a libcrypto of another layout) falls back to reading it.

Each ``Registry`` here is what one worker process has: its own ``UploadStore`` (own in-process
hashes), over the store and the coordinator records every worker shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dockyard.coord import LOCAL_AREA
from dockyard.coord.base import Coordinator
from dockyard.coord.local import LocalCoordinator
from dockyard.coord.memory import MemoryCoordinator
from dockyard.errors import DigestMismatch
from dockyard.oci import resumable
from dockyard.oci.digest import Digest
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.registry import Registry

pytestmark = pytest.mark.anyio
Workers = Callable[[], Registry]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "filesystem"])
def worker(request: pytest.FixtureRequest, tmp_path: Path) -> Workers:
    """Makes another worker of one store: same files, same coordinator records."""
    if request.param == "memory":
        driver = MemoryDriver()
        shared = MemoryCoordinator()
        return lambda: Registry(driver, coordinator=shared)

    def another() -> Registry:
        coordinator: Coordinator = LocalCoordinator(str(tmp_path / LOCAL_AREA))
        return Registry(FilesystemDriver(str(tmp_path), fsync=False), coordinator=coordinator)

    return another


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _chunked(workers: list[Registry], chunks: list[bytes]) -> str:
    """Start on the first worker, then PATCH each chunk on the next worker in turn."""
    upload = await workers[0].uploads.start("app")
    for i, chunk in enumerate(chunks):
        await workers[(i + 1) % len(workers)].uploads.append("app", upload, _body(chunk))
    return upload


async def test_patches_alternate_and_the_put_lands_on_a_third_without_reading_back(worker: Workers) -> None:
    one, two, three = worker(), worker(), worker()
    chunks = [b"a" * 100, b"b" * 70_000, b"c" * 3, b"d" * (1 << 20) + b"e"]
    last = b" and the tail"
    data = b"".join(chunks) + last
    upload = await _chunked([one, two], chunks)
    size = await three.uploads.finish("app", upload, Digest.of(data), _body(last))
    assert size == len(data)
    assert [w.uploads.rehashed for w in (one, two, three)] == [0, 0, 0]
    assert await three.blobs.get_bytes(Digest.of(data)) == data
    # A PUT without a body, on a worker that never saw the session, too.
    upload = await _chunked([one, two], chunks)
    assert await worker().uploads.finish("app", upload, Digest.of(b"".join(chunks)), None) > 0


async def test_a_sha512_push_in_one_request_is_hashed_as_it_arrives(worker: Workers) -> None:
    one = worker()
    data = b"sha512 in one request" * 1000
    digest = Digest("sha512", hashlib.sha512(data).hexdigest())
    assert await one.uploads.monolithic("app", digest, _body(data)) == len(data)
    assert one.uploads.rehashed == 0


async def test_another_algorithm_at_the_put_reads_the_data_back(worker: Workers) -> None:
    one, two = worker(), worker()
    data = b"chunked, then finished as sha512"
    upload = await _chunked([one], [data])
    digest = Digest("sha512", hashlib.sha512(data).hexdigest())
    await two.uploads.finish("app", upload, digest, None)
    assert two.uploads.rehashed == 1


@pytest.mark.parametrize("damage", ["corrupt", "other layout", "missing"])
async def test_a_state_that_does_not_restore_falls_back_to_the_stored_data(
    worker: Workers, damage: str
) -> None:
    one, two = worker(), worker()
    first, rest = b"x" * 5000, b"y" * 300
    upload = await _chunked([one], [first])
    record = await one.coordinator.get_session(upload)
    assert record is not None and record.hash_state is not None
    state = record.hash_state
    if damage == "corrupt":
        state = state[:30] + bytes([state[30] ^ 0xFF]) + state[31:]
    elif damage == "other layout":
        # What another libcrypto's context would look like: a sound record (its checksum right)
        # whose bit counter is not where this one keeps it.
        body = bytearray(state[: -resumable._CHECK])
        head = resumable._HEAD.size
        body[head + 32 : head + 40] = body[head + 36 : head + 40] + body[head + 32 : head + 36]
        state = bytes(body) + hashlib.blake2b(bytes(body), digest_size=resumable._CHECK).digest()
    else:
        state = None  # as a session written by an older dockyard has
    await one.coordinator.update_session(upload, offset=record.offset, hash_state=state)
    assert await two.uploads.finish("app", upload, Digest.of(first + rest), _body(rest)) == len(first + rest)
    assert two.uploads.rehashed == 1


async def test_a_patch_that_failed_half_way_is_not_continued_from_a_stale_state(worker: Workers) -> None:
    one, two = worker(), worker()
    upload = await _chunked([one], [b"acknowledged"])

    async def broken() -> AsyncIterator[bytes]:
        yield b"written, never acknowledged " * 50_000  # past one batch: reaches the store
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await one.uploads.append("app", upload, broken())
    # The record still holds the state of the acknowledged bytes; the store holds more. The state
    # does not match the stored size, so the PUT hashes what is stored (and refuses a digest of
    # only what was acknowledged).
    with pytest.raises(DigestMismatch):
        await two.uploads.finish("app", upload, Digest.of(b"acknowledged"), None)
    assert two.uploads.rehashed == 1


async def test_a_sha512_session_moves_between_workers_with_its_algorithm(worker: Workers) -> None:
    one, two, three = worker(), worker(), worker()
    upload = await one.uploads.start("app", "sha512")
    chunks = [b"first " * 1000, b"second " * 3000]
    for who, chunk in zip((two, one), chunks, strict=True):
        await who.uploads.append("app", upload, _body(chunk))
    data = b"".join(chunks)
    digest = Digest("sha512", hashlib.sha512(data).hexdigest())
    assert await three.uploads.finish("app", upload, digest, None) == len(data)
    assert [w.uploads.rehashed for w in (one, two, three)] == [0, 0, 0]


async def test_only_a_patch_makes_a_resumable_hash(worker: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that finishes the session never saves its hash state, so it hashes with hashlib
    (a ctypes context costs a GIL drop per call); a PATCH, whose state is saved, gets one."""
    made: list[str] = []
    real_new = resumable.new

    def counting_new(algorithm: str = "sha256") -> object:
        made.append(algorithm)
        return real_new(algorithm)

    monkeypatch.setattr(resumable, "new", counting_new)
    one, two = worker(), worker()
    data = b"one blob, whole in the PUT"
    upload = await one.uploads.start("app")
    assert await one.uploads.finish("app", upload, Digest.of(data), _body(data)) == len(data)
    assert await one.uploads.monolithic("app", Digest.of(data + b"!"), _body(data + b"!")) > 0
    assert made == []
    upload = await _chunked([one], [data])
    assert made == ["sha256"]
    await two.uploads.finish("app", upload, Digest.of(data + b"?"), _body(b"?"))
    assert [one.uploads.rehashed, two.uploads.rehashed] == [0, 0]
