"""In-memory driver for tests and throwaway development registries."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from dockyard.errors import LockBusy, PathNotFound, UploadBusy
from dockyard.storage.driver import FileInfo, check_path


class _Writer:
    def __init__(self, driver: MemoryDriver, path: str) -> None:
        self._driver = driver
        self._path = path

    @property
    def size(self) -> int:
        return len(self._driver.files[self._path][0])

    async def write(self, data: bytes, hasher: Any | None = None) -> None:
        buf, _ = self._driver.files[self._path]
        buf.extend(data)
        self._driver.files[self._path] = (buf, time.time())
        if hasher is not None:
            hasher.update(data)

    async def truncate(self, size: int) -> None:
        del self._driver.files[self._path][0][size:]

    async def sync(self) -> None:
        return None

    async def close(self) -> None:
        self._driver.locked.discard(self._path)

    async def commit(
        self,
        dst: str,
        files: Sequence[tuple[str, bytes]] = (),
        remove: Sequence[str] = (),
        *,
        data: bytes = b"",
    ) -> bool:
        try:
            if data:
                await self.write(data)
            published = await self._driver.publish(self._path, dst)
            await self._driver.put_many(files)
            await self._driver.delete_many(remove)
        finally:
            await self.close()
        return published


class _RWLock:
    """Readers/writer lock for one process (the memory driver never spans processes)."""

    def __init__(self) -> None:
        self.readers = 0
        self.writer = False
        self.changed = asyncio.Condition()

    async def acquire(self, shared: bool, wait: bool) -> None:
        async with self.changed:

            def free() -> bool:
                return not self.writer and (shared or self.readers == 0)

            if not wait and not free():
                raise LockBusy("memory lock")
            await self.changed.wait_for(free)
            if shared:
                self.readers += 1
            else:
                self.writer = True

    def release(self, shared: bool) -> None:
        if shared:
            self.readers -= 1
        else:
            self.writer = False
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class MemoryDriver:
    name = "inmemory"

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytearray, float]] = {}
        self.locked: set[str] = set()
        self.locks: dict[str, _RWLock] = {}

    def local_path(self, path: str) -> str | None:
        return None

    def _file(self, path: str) -> bytearray:
        try:
            return self.files[check_path(path)][0]
        except KeyError:
            raise PathNotFound(path) from None

    def _is_dir(self, path: str) -> bool:
        prefix = check_path(path) + "/"
        return any(p.startswith(prefix) for p in self.files)

    async def get_content(self, path: str) -> bytes:
        await asyncio.sleep(0)  # yield like real I/O, so concurrency bugs can show in tests
        return bytes(self._file(path))

    async def put_content(self, path: str, data: bytes) -> None:
        self.files[check_path(path)] = (bytearray(data), time.time())

    async def put_if_absent(self, path: str, data: bytes) -> bool:
        if check_path(path) in self.files:
            return False
        await self.put_content(path, data)
        return True

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        data = self._file(path)
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, 1 << 20):
            yield bytes(data[start : min(end, start + (1 << 20))])

    async def writer(self, path: str, *, append: bool = True, create: bool = True) -> _Writer:
        path = check_path(path)
        if path in self.locked:
            raise UploadBusy(path)
        if not create and path not in self.files:
            raise PathNotFound(path)
        if path not in self.files or not append:
            self.files[path] = (bytearray(), time.time())
        self.locked.add(path)
        return _Writer(self, path)

    async def hash_file(self, path: str, algorithm: str) -> tuple[str, int]:
        data = self._file(path)
        return hashlib.new(algorithm, data).hexdigest(), len(data)

    async def stat(self, path: str) -> FileInfo:
        await asyncio.sleep(0)
        path = check_path(path)
        if path in self.files:
            buf, mtime = self.files[path]
            return FileInfo(path, len(buf), mtime, False)
        if self._is_dir(path):
            return FileInfo(path, 0, 0.0, True)
        raise PathNotFound(path)

    async def exists(self, path: str) -> bool:
        return check_path(path) in self.files or self._is_dir(path)

    async def list_dir(self, path: str) -> list[str]:
        prefix = check_path(path) + "/"
        names = {p[len(prefix) :].split("/", 1)[0] for p in self.files if p.startswith(prefix)}
        if not names:
            raise PathNotFound(path)
        return sorted(names)

    async def list_tree(self, path: str, *, skip_prefix: str = "_") -> dict[str, list[str]]:
        prefix = check_path(path) + "/"
        out: dict[str, set[str]] = {}
        for p in self.files:
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix) :].split("/")
            for depth in range(len(parts)):
                if depth and parts[depth - 1].startswith(skip_prefix):
                    break
                out.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
        return {k: sorted(v) for k, v in out.items()}

    async def stat_many(self, paths: Sequence[str]) -> list[FileInfo | None]:
        out: list[FileInfo | None] = []
        for path in paths:
            try:
                out.append(await self.stat(path))
            except PathNotFound:
                out.append(None)
        return out

    async def get_many(self, paths: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for path in paths:
            try:
                out.append(await self.get_content(path))
            except PathNotFound:
                out.append(None)
        return out

    async def delete_many(self, paths: Sequence[str]) -> list[bool]:
        out = []
        for path in paths:
            try:
                await self.delete(path)
                out.append(True)
            except PathNotFound:
                out.append(False)
        return out

    async def touch_many(self, paths: Sequence[str]) -> list[bool]:
        return [await self.touch(p) for p in paths]

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for path, data in items:
            await self.put_content(path, data)

    async def publish(self, src: str, dst: str) -> bool:
        if await self.touch(dst):
            await self.delete(src)
            return False
        await self.move(src, dst)
        return True

    async def sweep_temporaries(self, path: str, older_than: float) -> int:
        prefix = check_path(path) + "/"
        dirs: set[str] = set()
        files = []
        for p, (_, mtime) in list(self.files.items()):
            if not p.startswith(prefix) or ".tmp-" not in p:
                continue
            parts = p.split("/")
            inside = next((i for i, part in enumerate(parts[:-1]) if ".tmp-" in part), None)
            if inside is not None:
                dirs.add("/".join(parts[: inside + 1]))
                del self.files[p]
            elif mtime < older_than:
                files.append(p)
        for p in files:
            del self.files[p]
        return len(dirs) + len(files)

    async def touch(self, path: str) -> bool:
        path = check_path(path)
        if path not in self.files:
            return False
        self.files[path] = (self.files[path][0], time.time())
        return True

    @contextlib.asynccontextmanager
    async def lock(self, name: str, *, shared: bool = False, wait: bool = True) -> AsyncIterator[None]:
        lock = self.locks.setdefault(name, _RWLock())
        await lock.acquire(shared, wait)
        try:
            yield
        finally:
            lock.release(shared)

    async def move(self, src: str, dst: str) -> None:
        check_path(dst)
        self.files[dst] = self.files.pop(check_path(src)) if src in self.files else self._missing(src)

    def _missing(self, path: str) -> tuple[bytearray, float]:
        raise PathNotFound(path)

    async def delete(self, path: str) -> None:
        path = check_path(path)
        prefix = path + "/"
        doomed = [p for p in self.files if p == path or p.startswith(prefix)]
        if not doomed:
            raise PathNotFound(path)
        for p in doomed:
            del self.files[p]
