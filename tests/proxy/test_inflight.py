"""One upstream fetch per missing blob: concurrent requesters read the spool of the one fill, and a
requester that goes away does not stop it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.errors import LockBusy
from dockyard.oci.digest import Digest
from dockyard.proxy.inflight import LiveSource, Progress, Ready, SpoolSource
from dockyard.storage.blobs import StoredBlob
from tests.proxy.conftest import Proxy, Upstream
from tests.proxy.images import push

pytestmark = pytest.mark.anyio


async def drain(source: object, offset: int = 0, length: int | None = None) -> bytes:
    assert isinstance(source, LiveSource | SpoolSource | StoredBlob)
    return b"".join([c async for c in source.read(offset, length)])


@pytest.mark.parametrize("storage", ["inmemory", "filesystem"])
async def test_sixteen_concurrent_requests_share_one_fetch(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy], tmp_path: Path, storage: str
) -> None:
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/big", "1", seed="16", sizes=(1_500_000,))
    section = (
        {"inmemory": {}} if storage == "inmemory" else {"filesystem": {"rootdirectory": str(tmp_path / "r")}}
    )
    proxy = make_proxy({"docker.io": (up, {})}, storage=section)
    layer = image.layers[0]
    up.gate = asyncio.Event()  # the upstream sends half the blob, then waits for the test

    model = proxy.services.model
    sources = [await model.open_blob("docker.io/library/big", Digest.parse(layer)) for _ in range(16)]
    # Every requester reads the one fill (from memory: it runs in this process), none asked the
    # upstream again.
    assert all(isinstance(s, LiveSource) for s in sources)
    assert up.count("GET", layer) == 1
    readers = [asyncio.create_task(drain(s)) for s in sources]
    readers.append(asyncio.create_task(drain(sources[0], 1000, 5000)))  # a range, too
    await asyncio.sleep(0)
    up.gate.set()
    results = await asyncio.gather(*readers)
    assert results[:16] == [image.blobs[layer]] * 16
    assert results[16] == image.blobs[layer][1000:6000]
    assert up.count("GET", layer) == 1
    # Over HTTP, sixteen at once, after the fill: the cache answers.
    responses = await asyncio.gather(
        *(proxy.client.get(f"/v2/docker.io/library/big/blobs/{layer}") for _ in range(16))
    )
    assert all(r.content == image.blobs[layer] for r in responses)
    assert up.count("GET", layer) == 1


async def test_first_client_disconnecting_does_not_stop_the_fill(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    """Decided: the fill belongs to no request; it finishes, and the blob is cached for the next."""
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/big", "1", seed="dc", sizes=(900_000,))
    proxy = make_proxy({"docker.io": (up, {})})
    layer = Digest.parse(image.layers[0])
    up.gate = asyncio.Event()
    model = proxy.services.model
    first = await model.open_blob("docker.io/library/big", layer)
    stream = first.read()
    assert await anext(stream)  # some bytes reached the client...
    await stream.aclose()  # ...which hangs up (the response's iteration stops)
    up.gate.set()
    fills = model.fills  # type: ignore[attr-defined]
    await fills.close(60)  # wait for the detached fill
    assert await proxy.services.registry.blobs.size_global(layer) == len(image.blobs[str(layer)])
    second = await model.open_blob("docker.io/library/big", layer)
    assert isinstance(second, StoredBlob)
    assert await drain(second) == image.blobs[str(layer)]
    assert up.count("GET", str(layer)) == 1


async def test_a_follower_of_a_failed_fill_sees_an_error_and_a_retry_refetches(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/big", "1", seed="ff", sizes=(600_000,))
    proxy = make_proxy({"docker.io": (up, {})})
    layer = Digest.parse(image.layers[0])
    up.gate, up.corrupt = asyncio.Event(), True
    model = proxy.services.model
    a = await model.open_blob("docker.io/library/big", layer)
    b = await model.open_blob("docker.io/library/big", layer)
    tasks = [asyncio.create_task(drain(s)) for s in (a, b)]
    up.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(type(o).__name__ == "FillFailed" for o in outcomes)
    assert await proxy.services.registry.blobs.size_global(layer) is None
    up.corrupt = False
    up.gate = None
    again = await model.open_blob("docker.io/library/big", layer)
    assert await drain(again) == image.blobs[str(layer)]
    assert up.count("GET", str(layer)) == 2


@pytest.mark.parametrize("kept", ["upload file", "spool", "spool, network filesystem"])
@pytest.mark.parametrize("machine", ["same", "other"])
async def test_two_workers_on_one_store_share_one_fetch(
    make_upstream: Callable[..., Upstream],
    tmp_path: Path,
    machine: str,
    kept: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers' services on one filesystem store (the local coordinator's file locks between
    them): on the same machine the second reads what the first one's spool names (the upload's
    own file on the filesystem; a copy in the spool when the driver has no local file, as on S3,
    or when the root is on a network filesystem);
    on another machine (its own spool directory, as a replica has) it waits for the commit, then
    reads storage."""
    from dockyard.app import create_services
    from dockyard.config import parse_config
    from dockyard.storage.uploads import UploadStore

    if kept == "spool":  # as on S3: no local upload file
        monkeypatch.setattr(UploadStore, "local_data", lambda *_: None)

    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/big", "1", seed="ww", sizes=(800_000,))
    layer = Digest.parse(image.layers[0])

    def worker(spool: str) -> object:
        tree = {
            "storage": {
                "filesystem": {
                    "rootdirectory": str(tmp_path / "root"),
                    "fsync": False,
                    "inlinemetadata": kept != "spool, network filesystem",
                }
            },
            "proxy": {
                "upstreams": [{"prefix": "docker.io", "remoteurl": "http://up.test"}],
                "spooldirectory": str(tmp_path / spool),
            },
        }
        return create_services(parse_config(tree), upstream_transports=lambda _: up).model

    first = worker("spool")
    second = worker("spool" if machine == "same" else "spool-elsewhere")
    up.gate = asyncio.Event()
    a = await first.open_blob("docker.io/library/big", layer)  # type: ignore[attr-defined]
    assert isinstance(a, LiveSource)
    opening = asyncio.create_task(second.open_blob("docker.io/library/big", layer))  # type: ignore[attr-defined]
    if machine == "same":
        b = await opening
        assert isinstance(b, SpoolSource)  # reading the first worker's spool
        spooled = sorted(p.suffix for p in (tmp_path / "spool").iterdir())
        if kept == "upload file":
            assert spooled == [".meta"]  # no copy of the bytes
            assert "/_uploads/" in b.source and b.source.endswith("/data")
        else:
            assert spooled == [".data", ".meta"]
            assert b.source.endswith(".data")
        reading = asyncio.create_task(drain(b))
        up.gate.set()
        assert await drain(a) == await reading == image.blobs[str(layer)]
    else:
        await asyncio.sleep(0.2)  # let it look (no spool here, the lock is held): it must wait
        assert not opening.done()  # it cannot finish before the blob is committed
        up.gate.set()
        assert await drain(a) == image.blobs[str(layer)]
        b = await opening
        assert isinstance(b, StoredBlob)  # waited for the commit
        assert await drain(b) == image.blobs[str(layer)]
    assert up.count("GET", str(layer)) == 1


async def test_shutdown_stops_a_stalled_fill_and_caches_nothing(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/big", "1", seed="sd", sizes=(400_000,))
    proxy = make_proxy({"docker.io": (up, {})})
    layer = Digest.parse(image.layers[0])
    up.gate = asyncio.Event()  # never set: the upstream stalls mid-body
    model = proxy.services.model
    source = await model.open_blob("docker.io/library/big", layer)
    assert isinstance(source, LiveSource)
    await model.close(0)  # type: ignore[attr-defined]
    assert not model.fills.tasks  # type: ignore[attr-defined]
    assert await proxy.services.registry.blobs.size_global(layer) is None


def _progress() -> Progress:
    return Progress("fill", 10)


async def test_a_requester_wakes_in_the_turn_after_the_fill_begins() -> None:
    # One turn of the loop, not two: in a turn between, the fill would read on from the upstream
    # while the client waits for its first byte (a shared future behind asyncio.shield takes two).
    ready = Ready()
    waiting = asyncio.create_task(ready.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    progress = _progress()
    ready.set_result(progress)
    await asyncio.sleep(0)
    assert waiting.done()
    assert waiting.result() is progress
    assert await ready.wait() is progress  # and later requesters at once


async def test_a_cancelled_requester_leaves_the_others_their_answer() -> None:
    ready = Ready()
    gone, stays = asyncio.create_task(ready.wait()), asyncio.create_task(ready.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    progress = _progress()
    ready.set_result(progress)
    assert await stays is progress
    assert gone.cancelled()


async def test_every_requester_hears_why_a_fill_could_not_begin() -> None:
    ready = Ready()
    waiting = [asyncio.create_task(ready.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    ready.set_exception(LockBusy("proxy-fill-x"))
    assert ready.done()
    for task in waiting:
        with pytest.raises(LockBusy):
            await task
    with pytest.raises(LockBusy):
        await ready.wait()
