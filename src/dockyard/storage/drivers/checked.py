"""The one wrapper every driver is used through (distribution's ``base.Base``).

Registry code never calls a driver directly: it calls :class:`CheckedDriver`, which

- checks every path once, here, so drivers need not (and an invalid path never reaches one);
- offers the batches registry code wants (``stat_many``, ``get_many``, ``put_many``,
  ``delete_many``) and the conveniences (``exists``, ``delete``, ``list_dir``,
  ``hash_file``) on top of the narrow primitives, using a driver's native batch where it has one
  (:class:`~dockyard.storage.driver.NativeBatches`) and a loop over the primitive otherwise;
- normalises errors: a driver that lets ``FileNotFoundError`` or ``ENOSPC`` escape still raises
  :class:`PathNotFound` / :class:`StorageFull` above, and any other failure carries a note
  naming the driver, the operation and the path;
- times every call for an injected :class:`StorageObserver` (the Prometheus metrics), by
  operation and outcome, when one is given (no clock is read otherwise).

Each call is a plain ``await`` on the driver's coroutine: no thread hop, no extra round trip.
"""

from __future__ import annotations

import errno
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from dockyard.errors import PathNotFound, StorageError, StorageFull
from dockyard.oci.digest import Hasher, new_hasher
from dockyard.storage.driver import FileInfo, FileWriter, StorageDriver, check_path

T = TypeVar("T")
_NOSPACE = {errno.ENOSPC, errno.EDQUOT}


def _normalise(exc: Exception, driver: str, op: str, where: str | Sequence[str]) -> Exception:
    """The error registry code should see for ``exc``, raised by ``driver`` doing ``op`` on
    ``where`` (a path, or a batch's paths: joined only here, when something failed)."""
    if isinstance(exc, StorageError):
        return exc
    path = where if isinstance(where, str) else ",".join(where)
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return PathNotFound(path)
    if isinstance(exc, OSError) and exc.errno in _NOSPACE:
        return StorageFull(str(exc))
    exc.add_note(f"storage driver {driver}: {op} {path}")
    return exc


class StorageObserver(Protocol):
    def storage_operation(self, operation: str, seconds: float, outcome: str) -> None:
        """One driver call ended: ``outcome`` is ``ok``, ``notfound`` or ``error``."""


def _outcome(exc: Exception) -> str:
    return "notfound" if isinstance(exc, PathNotFound) else "error"


async def _checked(
    call: Awaitable[T], observer: StorageObserver | None, driver: str, op: str, where: str | Sequence[str]
) -> T:
    """``call`` awaited, its error normalised, and timed for ``observer`` if there is one: one
    coroutine for all three (a driver call is a few microseconds on the loop; each coroutine
    layer around it cost about half of one)."""
    if observer is None:
        try:
            return await call
        except Exception as exc:
            raise _normalise(exc, driver, op, where) from exc
    started = time.perf_counter()
    try:
        result = await call
    except Exception as exc:
        error = _normalise(exc, driver, op, where)
        observer.storage_operation(op, time.perf_counter() - started, _outcome(error))
        raise error from exc
    observer.storage_operation(op, time.perf_counter() - started, "ok")
    return result


class CheckedWriter:
    """A driver's writer with its commit paths checked and its errors normalised."""

    def __init__(
        self, inner: FileWriter, driver: str, path: str, observer: StorageObserver | None = None
    ) -> None:
        self._inner = inner
        self._driver = driver
        self._path = path
        self._observer = observer

    @property
    def size(self) -> int:
        return self._inner.size

    def _call(self, op: str, call: Awaitable[T]) -> Awaitable[T]:
        return _checked(call, self._observer, self._driver, op, self._path)

    async def write(self, data: bytes, hasher: Hasher | None = None) -> None:
        await self._call("write", self._inner.write(data, hasher))

    async def close(self) -> None:
        await self._call("close", self._inner.close())

    async def flush(self) -> None:
        await self._call("flush", self._inner.flush())

    async def abort(self) -> None:
        await self._call("abort", self._inner.abort())

    async def commit(
        self,
        dst: str,
        files: Sequence[tuple[str, bytes]] = (),
        remove: Sequence[str] = (),
        *,
        data: bytes = b"",
    ) -> bool:
        check_path(dst)
        for path, _ in files:
            check_path(path)
        for path in remove:
            check_path(path)
        return await self._call("commit", self._inner.commit(dst, files, remove, data=data))


class CheckedDriver:
    """Path checks, batches and error normalisation around one driver (see the module doc)."""

    def __init__(
        self, driver: StorageDriver, *, redirect: bool = False, observer: StorageObserver | None = None
    ) -> None:
        self.inner = driver
        self.name = driver.name
        self._redirect = redirect
        self.observer = observer
        self._stat_many: Callable[..., Awaitable[list[FileInfo | None]]] | None = getattr(
            driver, "stat_many", None
        )
        self._get_many: Callable[[Sequence[str]], Awaitable[list[bytes | None]]] | None = getattr(
            driver, "get_many", None
        )
        self._put_many: Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]] | None = getattr(
            driver, "put_many", None
        )
        self._hash_file: Callable[[str, str], Awaitable[tuple[str, int]]] | None = getattr(
            driver, "hash_file", None
        )

    def _call(self, op: str, where: str | Sequence[str], call: Awaitable[T]) -> Awaitable[T]:
        return _checked(call, self.observer, self.name, op, where)

    # -- the primitives, checked ---------------------------------------------------------------

    async def get_content(self, path: str) -> bytes:
        return await self._call("get", path, self.inner.get_content(check_path(path)))

    async def put_content(self, path: str, data: bytes, *, if_absent: bool = False) -> bool:
        call = self.inner.put_content(check_path(path), data, if_absent=if_absent)
        return await self._call("put", path, call)

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        stream = self.inner.read(check_path(path), offset, length)
        started = time.perf_counter()
        try:
            async for chunk in stream:
                yield chunk
        except Exception as exc:
            error = _normalise(exc, self.name, "read", path)
            if self.observer is not None:
                self.observer.storage_operation("read", time.perf_counter() - started, _outcome(error))
            raise error from exc
        if self.observer is not None:  # the whole stream: a read's latency is its last byte's
            self.observer.storage_operation("read", time.perf_counter() - started, "ok")

    async def stat(self, path: str) -> FileInfo:
        return await self._call("stat", path, self.inner.stat(check_path(path)))

    async def list_tree(
        self, path: str, *, skip_prefix: str = "_", depth: int | None = None
    ) -> dict[str, list[str]]:
        if path != "/":  # the root may be walked (the driver suite's leftover check does)
            check_path(path)
        call = self.inner.list_tree(path, skip_prefix=skip_prefix, depth=depth)
        return await self._call("list", path, call)

    async def delete_many(self, paths: Sequence[str]) -> list[bool]:
        for path in paths:
            check_path(path)
        return await self._call("delete", paths, self.inner.delete_many(paths))

    async def copy(self, src: str, dst: str) -> None:
        await self._call("copy", src, self.inner.copy(check_path(src), check_path(dst)))

    async def writer(self, path: str, *, create: bool = True) -> CheckedWriter:
        inner = await self._call("writer", path, self.inner.writer(check_path(path), create=create))
        return CheckedWriter(inner, self.name, path, self.observer)

    async def redirect_url(self, path: str, expires: float) -> str | None:
        """None unless redirects are on (``storage.redirect.disable: false``) and the driver has one."""
        if not self._redirect:
            return None
        return await self._call("redirect", path, self.inner.redirect_url(check_path(path), expires))

    def local_path(self, path: str) -> str | None:
        return self.inner.local_path(check_path(path))

    async def cleanup(self, older_than: float) -> int:
        return await self._call("cleanup", "/", self.inner.cleanup(older_than))

    # -- conveniences over the primitives ------------------------------------------------------

    async def put_if_absent(self, path: str, data: bytes) -> bool:
        return await self.put_content(path, data, if_absent=True)

    async def exists(self, path: str) -> bool:
        try:
            await self.stat(path)
        except PathNotFound:
            return False
        return True

    async def delete(self, path: str) -> None:
        """Delete a file or a whole prefix; raise PathNotFound."""
        if not (await self.delete_many([path]))[0]:
            raise PathNotFound(path)

    async def list_dir(self, path: str) -> list[str]:
        """Names of the direct children of a directory; raise PathNotFound."""
        tree = await self.list_tree(path, skip_prefix="", depth=1)
        if "" not in tree:
            raise PathNotFound(path)
        return tree[""]

    async def hash_file(self, path: str, algorithm: str) -> tuple[str, int]:
        """Hex digest and size of a stored file (natively where the driver can, else streamed)."""
        if self._hash_file is not None:
            return await self._call("hash", path, self._hash_file(check_path(path), algorithm))
        hasher = new_hasher(algorithm)
        size = 0
        async for chunk in self.read(path):
            hasher.update(chunk)
            size += len(chunk)
        return hasher.hexdigest(), size

    # -- batches: native where the driver has them, else one loop written once ----------------

    async def _each_or_none(self, fn: Callable[[str], Awaitable[T]], paths: Sequence[str]) -> list[T | None]:
        out: list[T | None] = []
        for path in paths:
            try:
                out.append(await fn(path))
            except PathNotFound:
                out.append(None)
        return out

    async def stat_many(self, paths: Sequence[str], *, files: bool = False) -> list[FileInfo | None]:
        """``stat`` of each path, None where it does not exist. ``files``: the paths name files,
        so a directory there counts as missing too, and a driver need not look for one (on an
        object store, that is a LIST saved for every missing file)."""
        if self._stat_many is None:
            infos = await self._each_or_none(self.stat, paths)
        else:
            for path in paths:
                check_path(path)
            infos = await self._call("stat", paths, self._stat_many(paths, files=files))
        if files:
            return [None if info is None or info.is_dir else info for info in infos]
        return infos

    async def get_many(self, paths: Sequence[str]) -> list[bytes | None]:
        """``get_content`` of each path, None where it does not exist."""
        if self._get_many is None:
            return await self._each_or_none(self.get_content, paths)
        for path in paths:
            check_path(path)
        return await self._call("get", paths, self._get_many(paths))

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """``put_content`` of each item, in order (each one atomic)."""
        for path, _ in items:
            check_path(path)
        if self._put_many is None:
            for path, data in items:
                await self._call("put", path, self.inner.put_content(path, data))
            return
        await self._call("put", [p for p, _ in items], self._put_many(items))


def checked(
    driver: StorageDriver | CheckedDriver, *, redirect: bool = False, observer: StorageObserver | None = None
) -> CheckedDriver:
    """``driver`` behind the wrapper (a driver already wrapped is returned as it is)."""
    if isinstance(driver, CheckedDriver):
        return driver
    return CheckedDriver(driver, redirect=redirect, observer=observer)
