"""In-memory driver for tests and throwaway development registries.

Paths arrive checked (``checked.CheckedDriver`` is the only caller); batches are the wrapper's
loops over these primitives. Reads yield to the event loop once, like real I/O, so concurrency
bugs can show in tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from dockyard.errors import PathNotFound
from dockyard.oci.digest import Hasher
from dockyard.storage.driver import FileInfo


class _Writer:
    def __init__(self, driver: MemoryDriver, path: str) -> None:
        self._driver = driver
        self._path = path

    @property
    def size(self) -> int:
        return len(self._driver.files[self._path][0])

    async def write(self, data: bytes, hasher: Hasher | None = None) -> None:
        buf, _ = self._driver.files[self._path]
        buf.extend(data)
        self._driver.files[self._path] = (buf, time.time())
        if hasher is not None:
            hasher.update(data)

    async def close(self) -> None:
        return None

    async def flush(self) -> None:
        return None  # every write is readable at once

    async def abort(self) -> None:
        self._driver.files.pop(self._path, None)
        await self.close()

    async def commit(
        self,
        dst: str,
        files: Sequence[tuple[str, bytes]] = (),
        remove: Sequence[str] = (),
        *,
        data: bytes = b"",
    ) -> bool:
        driver = self._driver
        try:
            if data:
                await self.write(data)
            published = not driver._touch(dst)
            content = driver.files.pop(self._path)
            if published:
                driver.files[dst] = content
            for path, body in files:
                await driver.put_content(path, body)
            await driver.delete_many(remove)
        finally:
            await self.close()
        return published


class MemoryDriver:
    name = "inmemory"

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytearray, float]] = {}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> MemoryDriver:
        return cls()

    def local_path(self, path: str) -> str | None:
        return None

    async def redirect_url(self, path: str, expires: float) -> str | None:
        return None

    def _file(self, path: str) -> bytearray:
        try:
            return self.files[path][0]
        except KeyError:
            raise PathNotFound(path) from None

    def _below(self, path: str) -> list[str]:
        prefix = "/" if path == "/" else path + "/"
        return [p for p in self.files if p.startswith(prefix)]

    async def get_content(self, path: str) -> bytes:
        await asyncio.sleep(0)
        return bytes(self._file(path))

    async def put_content(self, path: str, data: bytes, *, if_absent: bool = False) -> bool:
        if if_absent and path in self.files:
            return False
        self.files[path] = (bytearray(data), time.time())
        return True

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        data = self._file(path)
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, 1 << 20):
            yield bytes(data[start : min(end, start + (1 << 20))])

    async def writer(self, path: str, *, create: bool = True) -> _Writer:
        if path not in self.files:
            if not create:
                raise PathNotFound(path)
            self.files[path] = (bytearray(), time.time())
        return _Writer(self, path)

    async def stat(self, path: str) -> FileInfo:
        await asyncio.sleep(0)
        if path in self.files:
            buf, mtime = self.files[path]
            return FileInfo(path, len(buf), mtime, False)
        if self._below(path):
            return FileInfo(path, 0, 0.0, True)
        raise PathNotFound(path)

    async def list_tree(
        self, path: str, *, skip_prefix: str = "_", depth: int | None = None
    ) -> dict[str, list[str]]:
        base = len(path.rstrip("/")) + 1
        out: dict[str, set[str]] = {}
        for p in self._below(path):
            parts = p[base:].split("/")
            for level in range(len(parts) if depth is None else min(depth, len(parts))):
                if level and skip_prefix and parts[level - 1].startswith(skip_prefix):
                    break
                out.setdefault("/".join(parts[:level]), set()).add(parts[level])
        return {k: sorted(v) for k, v in out.items()}

    async def delete_many(self, paths: Sequence[str]) -> list[bool]:
        out = []
        for path in paths:
            doomed = [path] if path in self.files else self._below(path)
            for p in doomed:
                del self.files[p]
            out.append(bool(doomed))
        return out

    async def copy(self, src: str, dst: str) -> None:
        self.files[dst] = (bytearray(self._file(src)), time.time())

    async def cleanup(self, older_than: float) -> int:
        return 0  # writes and deletes here are never left half done

    def _touch(self, path: str) -> bool:
        """A commit onto stored content refreshes its time; False if it is not stored."""
        if path not in self.files:
            return False
        self.files[path] = (self.files[path][0], time.time())
        return True
