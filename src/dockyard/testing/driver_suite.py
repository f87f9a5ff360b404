"""The conformance suite every storage driver must pass.

A driver's test module subclasses :class:`DriverSuite` and provides a ``driver`` fixture::

    class TestMyDriver(DriverSuite):
        @pytest.fixture
        def driver(self, tmp_path): return MyDriver(...)

The tests use the driver the way registry code does, through
:func:`~dockyard.storage.drivers.checked.checked`. They hold for an object store too: no test
orders modification times finer than a second or sleeps to make them differ (a driver whose
stored times can be set overrides :meth:`DriverSuite.age`; the tests that need it skip
otherwise), and every test removes what it wrote, which the teardown checks: a driver that
leaves files behind (a temporary, a part of an aborted upload) fails the test that caused it.

Tests run under anyio (asyncio backend); the suite needs ``pytest`` and ``anyio`` installed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.errors import InvalidPath, PathNotFound
from dockyard.storage.driver import StorageDriver
from dockyard.storage.drivers.checked import CheckedDriver, checked


async def _read_all(store: CheckedDriver, path: str, offset: int = 0, length: int | None = None) -> bytes:
    out = bytearray()
    async for chunk in store.read(path, offset, length):
        out += chunk
    return bytes(out)


@pytest.mark.anyio
class DriverSuite:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def store(self, driver: StorageDriver) -> AsyncIterator[CheckedDriver]:
        """The driver behind the wrapper; afterwards, the test must have left no file behind."""
        store = checked(driver)
        yield store
        assert await self.leftovers(store) == [], "the test left files in the store"

    async def leftovers(self, store: CheckedDriver) -> list[str]:
        """Every file in the store (directories without files do not count: object stores
        have none). A driver whose temporaries a listing hides should look past it here."""
        tree = await store.list_tree("/", skip_prefix="")
        entries = (f"{d}/{n}" if d else n for d, names in tree.items() for n in names)
        return sorted(e for e in entries if e not in tree)

    async def age(self, driver: StorageDriver, path: str, seconds: float) -> None:
        """Make ``path``'s stored modification time ``seconds`` older, where the driver can."""
        pytest.skip(f"the {driver.name} driver's stored times cannot be set")

    async def test_put_get_overwrite(self, store: CheckedDriver) -> None:
        assert await store.put_content("/a/b/c", b"one")
        assert await store.get_content("/a/b/c") == b"one"
        await store.put_content("/a/b/c", b"two!")
        assert await store.get_content("/a/b/c") == b"two!"
        assert (await store.stat("/a/b/c")).size == 4
        await store.delete("/a")

    async def test_missing_paths(self, store: CheckedDriver) -> None:
        with pytest.raises(PathNotFound):
            await store.get_content("/nope")
        with pytest.raises(PathNotFound):
            await store.stat("/nope")
        with pytest.raises(PathNotFound):
            await store.list_dir("/nope")
        with pytest.raises(PathNotFound):
            await store.delete("/nope")
        with pytest.raises(PathNotFound):
            await _read_all(store, "/nope")
        with pytest.raises(PathNotFound):
            await store.copy("/nope", "/nope2")
        assert not await store.exists("/nope")
        assert await store.delete_many(["/nope", "/nope/deeper"]) == [False, False]

    @pytest.mark.parametrize(
        "path",
        [
            *("", "/", "relative", "/a/../b", "/a/./b", "/..", "/a/..", "/.", "/./a"),
            *("/a//b", "/a/b/", "/a b", "/a\x00b", "/ä"),
        ],
    )
    async def test_invalid_paths(self, store: CheckedDriver, path: str) -> None:
        with pytest.raises(InvalidPath):
            await store.put_content(path, b"x")
        with pytest.raises(InvalidPath):
            await store.delete_many(["/fine", path])
        with pytest.raises(InvalidPath):
            await store.writer(path)

    async def test_put_if_absent(self, store: CheckedDriver) -> None:
        assert await store.put_if_absent("/p/file", b"first")
        assert not await store.put_if_absent("/p/file", b"second")
        assert await store.get_content("/p/file") == b"first"
        await store.delete("/p")

    async def test_concurrent_put_if_absent_has_one_winner(self, store: CheckedDriver) -> None:
        results = await asyncio.gather(*(store.put_if_absent("/race/file", b"%d" % i) for i in range(16)))
        assert sum(results) == 1
        assert await store.get_content("/race/file") == b"%d" % results.index(True)
        await store.delete("/race")

    async def test_read_with_offset_and_length(self, store: CheckedDriver) -> None:
        data = bytes(range(256)) * 8192  # 2 MiB: more than one read chunk
        await store.put_content("/r/data", data)
        assert await _read_all(store, "/r/data") == data
        assert await _read_all(store, "/r/data", 1000) == data[1000:]
        assert await _read_all(store, "/r/data", 1000, 1_500_000) == data[1000:1_501_000]
        assert await _read_all(store, "/r/data", len(data)) == b""
        await store.delete("/r/data")

    async def test_append_writer_resumes_and_hashes(self, store: CheckedDriver) -> None:
        hasher = hashlib.sha256()
        writer = await store.writer("/w/data")
        await writer.write(b"hello ", hasher)
        assert writer.size == 6
        await writer.close()
        writer = await store.writer("/w/data")
        assert writer.size == 6
        await writer.write(b"world", hasher)
        await writer.close()
        assert await store.get_content("/w/data") == b"hello world"
        assert hasher.hexdigest() == hashlib.sha256(b"hello world").hexdigest()
        assert await store.hash_file("/w/data", "sha256") == (hasher.hexdigest(), 11)
        assert (await store.hash_file("/w/data", "sha512"))[0] == hashlib.sha512(b"hello world").hexdigest()
        await store.delete("/w")

    async def test_writer_abort_drops_the_data_and_releases(self, store: CheckedDriver) -> None:
        writer = await store.writer("/ab/data")
        await writer.write(b"half an upload")
        await writer.abort()
        assert not await store.exists("/ab/data")
        with pytest.raises(PathNotFound):
            await store.writer("/ab/data", create=False)
        again = await store.writer("/ab/data")  # released: a new one may start
        assert again.size == 0
        await again.abort()

    async def test_writer_commit_publishes_writes_removes_and_closes(self, store: CheckedDriver) -> None:
        writer = await store.writer("/up/u1/data")
        await store.put_content("/up/u1/startedat", b"then")
        await writer.write(b"blob ")
        published = await writer.commit(
            "/blobs/b1/data", [("/repo/link", b"sha256:b1")], ["/up/u1", "/gone"], data=b"bytes"
        )
        assert published is True
        assert await store.get_content("/blobs/b1/data") == b"blob bytes"
        assert await store.get_content("/repo/link") == b"sha256:b1"
        assert not await store.exists("/up/u1/data")
        assert not await store.exists("/up/u1")
        again = await store.writer("/up/u1/data")  # closed: a new session can start
        await again.abort()
        assert await store.delete_many(["/blobs", "/repo"]) == [True, True]

    async def test_writer_commit_onto_stored_content_keeps_it(self, store: CheckedDriver) -> None:
        await store.put_content("/blobs/b2/data", b"stored first")
        writer = await store.writer("/up/u2/data")
        await writer.write(b"stored first")
        assert await writer.commit("/blobs/b2/data", [], ["/up/u2"]) is False
        assert await store.get_content("/blobs/b2/data") == b"stored first"
        assert not await store.exists("/up/u2/data")
        again = await store.writer("/up/u2/data")
        await again.abort()
        await store.delete("/blobs")

    async def test_writer_commit_onto_stored_content_refreshes_its_time(
        self, driver: StorageDriver, store: CheckedDriver
    ) -> None:
        await store.put_content("/blobs/b3/data", b"stored first")
        try:
            await self.age(driver, "/blobs/b3/data", 3600)
            assert (await store.stat("/blobs/b3/data")).mtime < time.time() - 3000
            writer = await store.writer("/up/u3/data")
            await writer.write(b"stored first")
            assert await writer.commit("/blobs/b3/data", [], ["/up/u3"]) is False
            assert (await store.stat("/blobs/b3/data")).mtime > time.time() - 600
        finally:
            await store.delete_many(["/blobs", "/up"])

    async def test_large_stream_append(self, store: CheckedDriver) -> None:
        chunk = b"z" * (1 << 20)
        writer = await store.writer("/big/data")
        for _ in range(8):
            await writer.write(chunk)
        await writer.close()
        assert (await store.stat("/big/data")).size == 8 << 20
        await store.delete("/big")

    async def test_large_file_continued_then_flushed(self, store: CheckedDriver) -> None:
        """Past an object store's part size: after ``close`` the size is kept for the next
        writer (the bytes may not be readable yet); ``flush`` makes them readable, and the
        writer goes on after it."""
        data = hashlib.sha256(b"large").digest() * ((11 << 20) // 32)  # 11 MiB
        writer = await store.writer("/lf/data")
        await writer.write(data)
        await writer.close()
        assert (await store.stat("/lf/data")).size == len(data)
        writer = await store.writer("/lf/data", create=False)
        assert writer.size == len(data)
        await writer.write(b"more")
        await writer.flush()
        assert await store.hash_file("/lf/data", "sha256") == (
            hashlib.sha256(data + b"more").hexdigest(),
            len(data) + 4,
        )
        await writer.write(b" and after")
        await writer.close()
        writer = await store.writer("/lf/data", create=False)
        await writer.flush()
        assert await _read_all(store, "/lf/data", len(data)) == b"more and after"
        await writer.close()
        await store.delete("/lf")

    async def test_concurrent_streams(self, store: CheckedDriver) -> None:
        """Sixteen uploads written in interleaved parts, then read back at once."""
        streams = 16
        parts = [[bytes([i]) * (4096 + 977 * j) for j in range(6)] for i in range(streams)]

        async def upload(i: int) -> None:
            writer = await store.writer(f"/cs/{i}/data")
            for part in parts[i]:
                await writer.write(part)
                await asyncio.sleep(0)  # let the other streams write in between
            assert await writer.commit(f"/cs/{i}/blob", [(f"/cs/{i}/link", b"%d" % i)], [f"/cs/{i}/data"])

        await asyncio.gather(*(upload(i) for i in range(streams)))
        read = await asyncio.gather(*(_read_all(store, f"/cs/{i}/blob") for i in range(streams)))
        assert read == [b"".join(p) for p in parts]
        assert await store.get_many([f"/cs/{i}/link" for i in range(streams)]) == [
            b"%d" % i for i in range(streams)
        ]
        await store.delete("/cs")

    async def test_list_and_directories(self, store: CheckedDriver) -> None:
        await store.put_content("/l/a/x", b"1")
        await store.put_content("/l/a/y", b"2")
        await store.put_content("/l/b", b"3")
        assert sorted(await store.list_dir("/l")) == ["a", "b"]
        assert sorted(await store.list_dir("/l/a")) == ["x", "y"]
        assert (await store.stat("/l/a")).is_dir
        assert not (await store.stat("/l/b")).is_dir
        assert await store.exists("/l/a")
        await store.delete("/l")

    async def test_copy_replaces_and_creates_parents(self, store: CheckedDriver) -> None:
        await store.put_content("/m/src", b"new")
        await store.put_content("/m/deep/er/dst", b"old")
        await store.copy("/m/src", "/m/deep/er/dst")
        assert await store.get_content("/m/deep/er/dst") == b"new"
        assert await store.get_content("/m/src") == b"new"
        await store.copy("/m/src", "/n/fresh/dst")
        assert await store.get_content("/n/fresh/dst") == b"new"
        assert await store.delete_many(["/m", "/n"]) == [True, True]

    async def test_delete_is_recursive_and_prefix_exact(self, store: CheckedDriver) -> None:
        await store.put_content("/d/dir/a", b"1")
        await store.put_content("/d/dir/sub/b", b"2")
        await store.put_content("/d/dir2/c", b"3")
        await store.put_content("/d/file", b"4")
        await store.delete("/d/dir")
        assert not await store.exists("/d/dir")
        assert await store.get_content("/d/dir2/c") == b"3"  # a sibling sharing the prefix survives
        await store.delete("/d/file")
        assert sorted(await store.list_dir("/d")) == ["dir2"]
        await store.delete("/d")

    async def test_zero_length_files(self, store: CheckedDriver) -> None:
        await store.put_content("/z/empty", b"")
        assert await store.get_content("/z/empty") == b""
        assert (await store.stat("/z/empty")).size == 0
        assert await _read_all(store, "/z/empty") == b""
        await store.delete("/z")

    async def test_list_tree(self, store: CheckedDriver) -> None:
        await store.put_content("/t/a/_skip/x", b"1")
        await store.put_content("/t/a/b/_m/y", b"2")
        await store.put_content("/t/c", b"3")
        tree = await store.list_tree("/t")
        assert sorted(tree[""]) == ["a", "c"]
        assert sorted(tree["a"]) == ["_skip", "b"]
        assert sorted(tree["a/b"]) == ["_m"]
        assert "a/_skip" not in tree and "a/b/_m" not in tree
        assert {k: sorted(v) for k, v in (await store.list_tree("/t", depth=2)).items()} == {
            "": ["a", "c"],
            "a": ["_skip", "b"],
        }
        assert "a/b/_m" in await store.list_tree("/t", skip_prefix="")
        assert await store.list_tree("/absent") == {}
        await store.delete("/t")

    async def test_batches(self, store: CheckedDriver) -> None:
        await store.put_many([("/b/one", b"1"), ("/b/two/deep", b"22")])
        infos = await store.stat_many(["/b/one", "/b/absent", "/b/two/deep"])
        assert [i.size if i else None for i in infos] == [1, None, 2]
        dirs = await store.stat_many(["/b/two", "/b/absent"])
        assert [i.is_dir if i else None for i in dirs] == [True, None]
        files = await store.stat_many(["/b/one", "/b/two", "/b/absent", "/b/two/deep"], files=True)
        assert [i.size if i else None for i in files] == [1, None, None, 2]  # a directory is no file
        assert await store.get_many(["/b/two/deep", "/b/absent"]) == [b"22", None]
        assert await store.delete_many(["/b/two", "/b/absent", "/b/one"]) == [True, False, True]
        assert not await store.exists("/b/two/deep") and not await store.exists("/b/one")

    async def test_cleanup_keeps_everything_written_through_the_driver(self, store: CheckedDriver) -> None:
        await store.put_content("/k/small", b"kept")
        writer = await store.writer("/k/upload/data")
        await writer.write(b"an upload in progress")
        await writer.close()
        await store.cleanup(time.time() + 3600)
        assert await store.get_content("/k/small") == b"kept"
        assert await store.get_content("/k/upload/data") == b"an upload in progress"
        await store.delete("/k")

    async def test_serving_paths(self, driver: StorageDriver, store: CheckedDriver) -> None:
        await store.put_content("/s/blob", b"served")
        local = store.local_path("/s/blob")
        if local is not None:
            assert await asyncio.to_thread(Path(local).read_bytes) == b"served"
        url = await driver.redirect_url("/s/blob", 60)
        assert url is None or url.startswith(("http://", "https://"))
        assert await store.redirect_url("/s/blob", 60) is None  # off unless configured
        await store.delete("/s")

    async def test_writer_without_create(self, store: CheckedDriver) -> None:
        with pytest.raises(PathNotFound):
            await store.writer("/nc/data", create=False)
        assert not await store.exists("/nc")
