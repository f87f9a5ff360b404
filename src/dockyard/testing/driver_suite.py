"""The conformance suite every storage driver must pass.

A driver's test module subclasses :class:`DriverSuite` and provides a ``driver`` fixture::

    class TestMyDriver(DriverSuite):
        @pytest.fixture
        def driver(self, tmp_path): return MyDriver(...)

Tests run under anyio (asyncio backend); the suite needs ``pytest`` and ``anyio`` installed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from dockyard.errors import InvalidPath, LockBusy, PathNotFound, UploadBusy
from dockyard.storage.driver import StorageDriver


async def _read_all(driver: StorageDriver, path: str, offset: int = 0, length: int | None = None) -> bytes:
    out = bytearray()
    async for chunk in driver.read(path, offset, length):
        out += chunk
    return bytes(out)


@pytest.mark.anyio
class DriverSuite:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    async def test_put_get_overwrite(self, driver: StorageDriver) -> None:
        await driver.put_content("/a/b/c", b"one")
        assert await driver.get_content("/a/b/c") == b"one"
        await driver.put_content("/a/b/c", b"two!")
        assert await driver.get_content("/a/b/c") == b"two!"
        assert (await driver.stat("/a/b/c")).size == 4

    async def test_missing_paths(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFound):
            await driver.get_content("/nope")
        with pytest.raises(PathNotFound):
            await driver.stat("/nope")
        with pytest.raises(PathNotFound):
            await driver.list_dir("/nope")
        with pytest.raises(PathNotFound):
            await driver.delete("/nope")
        with pytest.raises(PathNotFound):
            await _read_all(driver, "/nope")
        assert not await driver.exists("/nope")

    @pytest.mark.parametrize(
        "path", ["", "relative", "/a/../b", "/a/./b", "/a//b", "/a/b/", "/a b", "/a\x00b", "/ä"]
    )
    async def test_invalid_paths(self, driver: StorageDriver, path: str) -> None:
        with pytest.raises(InvalidPath):
            await driver.put_content(path, b"x")

    async def test_put_if_absent(self, driver: StorageDriver) -> None:
        assert await driver.put_if_absent("/p/file", b"first")
        assert not await driver.put_if_absent("/p/file", b"second")
        assert await driver.get_content("/p/file") == b"first"

    async def test_concurrent_put_if_absent_has_one_winner(self, driver: StorageDriver) -> None:
        results = await asyncio.gather(*(driver.put_if_absent("/race/file", b"%d" % i) for i in range(16)))
        assert sum(results) == 1
        assert await driver.get_content("/race/file") == b"%d" % results.index(True)

    async def test_read_with_offset_and_length(self, driver: StorageDriver) -> None:
        data = bytes(range(256)) * 8192  # 2 MiB: more than one read chunk
        await driver.put_content("/r/data", data)
        assert await _read_all(driver, "/r/data") == data
        assert await _read_all(driver, "/r/data", 1000) == data[1000:]
        assert await _read_all(driver, "/r/data", 1000, 1_500_000) == data[1000:1_501_000]
        assert await _read_all(driver, "/r/data", len(data)) == b""

    async def test_append_writer_resumes_and_hashes(self, driver: StorageDriver) -> None:
        hasher = hashlib.sha256()
        writer = await driver.writer("/w/data")
        await writer.write(b"hello ", hasher)
        assert writer.size == 6
        await writer.sync()
        await writer.close()
        writer = await driver.writer("/w/data")
        assert writer.size == 6
        await writer.write(b"world", hasher)
        await writer.close()
        assert await driver.get_content("/w/data") == b"hello world"
        assert hasher.hexdigest() == hashlib.sha256(b"hello world").hexdigest()
        assert await driver.hash_file("/w/data", "sha256") == (hasher.hexdigest(), 11)
        assert (await driver.hash_file("/w/data", "sha512"))[0] == hashlib.sha512(b"hello world").hexdigest()

    async def test_writer_is_exclusive(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/x/data")
        with pytest.raises(UploadBusy):
            await driver.writer("/x/data")
        await writer.close()
        again = await driver.writer("/x/data")
        await again.close()

    async def test_writer_commit_publishes_writes_removes_and_closes(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/up/u1/data")
        await driver.put_content("/up/u1/startedat", b"then")
        await writer.write(b"blob ")
        published = await writer.commit(
            "/blobs/b1/data", [("/repo/link", b"sha256:b1")], ["/up/u1", "/gone"], data=b"bytes"
        )
        assert published is True
        assert await driver.get_content("/blobs/b1/data") == b"blob bytes"
        assert await driver.get_content("/repo/link") == b"sha256:b1"
        assert not await driver.exists("/up/u1/data")
        assert not await driver.exists("/up/u1")
        again = await driver.writer("/up/u1/data")  # closed: the lock is free, a new session can start
        await again.close()

    async def test_writer_commit_onto_stored_content_touches_it(self, driver: StorageDriver) -> None:
        await driver.put_content("/blobs/b2/data", b"stored first")
        before = (await driver.stat("/blobs/b2/data")).mtime
        await asyncio.sleep(0.02)
        writer = await driver.writer("/up/u2/data")
        await writer.write(b"stored first")
        assert await writer.commit("/blobs/b2/data", [], ["/up/u2"]) is False
        assert await driver.get_content("/blobs/b2/data") == b"stored first"
        assert (await driver.stat("/blobs/b2/data")).mtime > before
        assert not await driver.exists("/up/u2/data")
        again = await driver.writer("/up/u2/data")
        await again.close()

    async def test_large_stream_append(self, driver: StorageDriver) -> None:
        chunk = b"z" * (1 << 20)
        writer = await driver.writer("/big/data")
        for _ in range(8):
            await writer.write(chunk)
        await writer.close()
        assert (await driver.stat("/big/data")).size == 8 << 20

    async def test_list_and_directories(self, driver: StorageDriver) -> None:
        await driver.put_content("/l/a/x", b"1")
        await driver.put_content("/l/a/y", b"2")
        await driver.put_content("/l/b", b"3")
        assert sorted(await driver.list_dir("/l")) == ["a", "b"]
        assert sorted(await driver.list_dir("/l/a")) == ["x", "y"]
        assert (await driver.stat("/l/a")).is_dir
        assert not (await driver.stat("/l/b")).is_dir
        assert await driver.exists("/l/a")

    async def test_move_replaces_and_creates_parents(self, driver: StorageDriver) -> None:
        await driver.put_content("/m/src", b"new")
        await driver.put_content("/m/deep/er/dst", b"old")
        await driver.move("/m/src", "/m/deep/er/dst")
        assert await driver.get_content("/m/deep/er/dst") == b"new"
        assert not await driver.exists("/m/src")
        await driver.put_content("/m/src2", b"x")
        await driver.move("/m/src2", "/n/fresh/dst")
        assert await driver.get_content("/n/fresh/dst") == b"x"
        with pytest.raises(PathNotFound):
            await driver.move("/m/absent", "/m/whatever")

    async def test_delete_is_recursive_and_prefix_exact(self, driver: StorageDriver) -> None:
        await driver.put_content("/d/dir/a", b"1")
        await driver.put_content("/d/dir/sub/b", b"2")
        await driver.put_content("/d/dir2/c", b"3")
        await driver.put_content("/d/file", b"4")
        await driver.delete("/d/dir")
        assert not await driver.exists("/d/dir")
        assert await driver.get_content("/d/dir2/c") == b"3"  # a sibling sharing the prefix survives
        await driver.delete("/d/file")
        assert sorted(await driver.list_dir("/d")) == ["dir2"]

    async def test_zero_length_files(self, driver: StorageDriver) -> None:
        await driver.put_content("/z/empty", b"")
        assert await driver.get_content("/z/empty") == b""
        assert (await driver.stat("/z/empty")).size == 0
        assert await _read_all(driver, "/z/empty") == b""

    async def test_list_tree(self, driver: StorageDriver) -> None:
        await driver.put_content("/t/a/_skip/x", b"1")
        await driver.put_content("/t/a/b/_m/y", b"2")
        await driver.put_content("/t/c", b"3")
        tree = await driver.list_tree("/t")
        assert sorted(tree[""]) == ["a", "c"]
        assert sorted(tree["a"]) == ["_skip", "b"]
        assert sorted(tree["a/b"]) == ["_m"]
        assert "a/_skip" not in tree and "a/b/_m" not in tree
        assert await driver.list_tree("/absent") == {}

    async def test_touch(self, driver: StorageDriver) -> None:
        await driver.put_content("/touch/file", b"x")
        before = (await driver.stat("/touch/file")).mtime
        await asyncio.sleep(0.02)
        assert await driver.touch("/touch/file")
        assert (await driver.stat("/touch/file")).mtime > before
        assert not await driver.touch("/touch/absent")

    async def test_locks_exclude_and_share(self, driver: StorageDriver) -> None:
        async with driver.lock("gc", shared=True), driver.lock("gc", shared=True):
            with pytest.raises(LockBusy):
                async with driver.lock("gc", wait=False):
                    pass
        async with driver.lock("gc"):
            with pytest.raises(LockBusy):
                async with driver.lock("gc", shared=True, wait=False):
                    pass
        order: list[str] = []

        async def writer() -> None:
            async with driver.lock("w"):
                order.append("w-in")
                await asyncio.sleep(0.05)
                order.append("w-out")

        async def reader() -> None:
            await asyncio.sleep(0.01)
            async with driver.lock("w", shared=True):
                order.append("r")

        await asyncio.gather(writer(), reader())
        assert order == ["w-in", "w-out", "r"]

    async def test_batches(self, driver: StorageDriver) -> None:
        await driver.put_many([("/b/one", b"1"), ("/b/two/deep", b"22")])
        infos = await driver.stat_many(["/b/one", "/b/absent", "/b/two/deep"])
        assert [i.size if i else None for i in infos] == [1, None, 2]
        assert await driver.touch_many(["/b/one", "/b/absent"]) == [True, False]
        assert await driver.get_many(["/b/two/deep", "/b/absent"]) == [b"22", None]
        assert await driver.delete_many(["/b/two", "/b/absent", "/b/one"]) == [True, False, True]
        assert not await driver.exists("/b/two/deep") and not await driver.exists("/b/one")

    async def test_publish(self, driver: StorageDriver) -> None:
        await driver.put_content("/p/upload", b"content")
        assert await driver.publish("/p/upload", "/p/blobs/x/data")
        assert await driver.get_content("/p/blobs/x/data") == b"content"
        assert not await driver.exists("/p/upload")
        await driver.put_content("/p/upload2", b"content")
        assert not await driver.publish(
            "/p/upload2", "/p/blobs/x/data"
        )  # already there: kept, source dropped
        assert not await driver.exists("/p/upload2")

    async def test_sweep_temporaries(self, driver: StorageDriver) -> None:
        await driver.put_content("/t/blobs/ab.tmp-123/data", b"left by a killed delete")
        await driver.put_content("/t/link.tmp-456", b"left by a killed write")
        await driver.put_content("/t/keep/data", b"real")
        # The directory goes at once; the file only once it is older than the cutoff.
        assert await driver.sweep_temporaries("/t", time.time() - 3600) == 1
        assert await driver.exists("/t/link.tmp-456")
        assert await driver.sweep_temporaries("/t", time.time() + 10) == 1
        assert await driver.get_content("/t/keep/data") == b"real"
        assert not await driver.exists("/t/link.tmp-456")

    async def test_writer_without_create(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFound):
            await driver.writer("/nc/data", create=False)
        assert not await driver.exists("/nc")
