"""Local filesystem driver, byte-compatible with distribution's ``filesystem`` driver.

Blocking calls run in the driver's own worker threads (``offload.Offload``: about half the
per-call cost of ``loop.run_in_executor``, a sixth of ``anyio.to_thread``) so the event loop never
waits on the disk.
Small files are written to a temporary sibling, fsynced (unless ``fsync`` is off) and renamed into
place, so readers see the old or the new content, never a torn write.

Metadata is the exception (issue #16's relaxed rule, ``inlinemetadata``): ``stat``, and reads of
files up to 4 KiB (link files, most manifests) run on the event loop, since a thread round trip
costs several times what the system calls do; a larger file read this way goes on in a thread.
The default, ``auto``, does so unless the root is on a network filesystem (``fstype``), where one
``stat`` can wait on a server; ``true`` and ``false`` decide it outright.

Paths arrive checked (``checked.CheckedDriver`` is the only caller). Batches (``stat_many``,
``put_many``, ...) and a writer's ``commit`` each take one trip to the worker threads, except
metadata batches of up to 16 paths with ``inlinemetadata``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, BinaryIO, TypeVar

from dockyard.errors import PathNotFound, StorageFull
from dockyard.oci.digest import Hasher
from dockyard.storage.driver import FileInfo, each_or_none
from dockyard.storage.drivers.fstype import is_network, mount_type
from dockyard.storage.drivers.offload import Offload

_READ_CHUNK = 1 << 20
INLINE_READ = 4096  # a file this size or smaller is read on the event loop (inlinemetadata)
INLINE_BATCH = 16  # metadata batches this long or shorter run on the event loop too
_RDONLY = os.O_RDONLY | os.O_CLOEXEC
log = logging.getLogger("dockyard.storage")
T = TypeVar("T")
_NOSPACE = {errno.ENOSPC, errno.EDQUOT}


def _open_binary(path: str) -> BinaryIO:
    return open(path, "rb")  # closed by the caller


def _inline_setting(value: object) -> bool | None:
    """``storage.filesystem.inlinemetadata``: ``auto`` (None: decided by the root's filesystem),
    or true/false."""
    return None if value == "auto" else bool(value)


def _translate(exc: OSError, path: str) -> Exception:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return PathNotFound(path)
    if exc.errno in _NOSPACE:
        return StorageFull(str(exc))
    return exc


class _Writer:
    def __init__(self, driver: FilesystemDriver, path: str, fd: int, size: int) -> None:
        self._driver = driver
        self._path = path
        self._fd = fd
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def _write(self, data: bytes, hasher: Hasher | None) -> None:
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                n = os.write(self._fd, view[written:])
                if hasher is not None:
                    hasher.update(view[written : written + n])
                written += n
        except OSError as exc:
            raise _translate(exc, self._path) from exc
        finally:
            self._size += written

    async def write(self, data: bytes, hasher: Hasher | None = None) -> None:
        await self._driver.run(self._write, data, hasher)

    async def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            await self._driver.run(os.close, fd)

    async def flush(self) -> None:
        return None  # written straight to the file: readable at once

    def _abort(self) -> None:
        fd, self._fd = self._fd, -1
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._driver._full(self._path))
        finally:
            if fd >= 0:
                os.close(fd)  # after the unlink: nobody else opens the file meanwhile

    async def abort(self) -> None:
        await self._driver.run(self._abort)

    def _commit(
        self, dst: str, files: Sequence[tuple[str, bytes]], remove: Sequence[str], data: bytes
    ) -> bool:
        if data:
            self._write(data, None)
        fd, self._fd = self._fd, -1
        try:
            published = self._driver._publish(self._path, dst, fd)
            self._driver._put_many(files)
            self._driver._delete_many(remove)
        finally:
            os.close(fd)
        return published

    async def commit(
        self,
        dst: str,
        files: Sequence[tuple[str, bytes]] = (),
        remove: Sequence[str] = (),
        *,
        data: bytes = b"",
    ) -> bool:
        return await self._driver.run(self._commit, dst, files, remove, data)


class FilesystemDriver:
    name = "filesystem"

    def __init__(
        self, root: str, *, fsync: bool = True, threads: int = 32, inline_metadata: bool | None = None
    ) -> None:
        self.root = os.path.abspath(root)
        self.fsync = fsync
        os.makedirs(self.root, exist_ok=True)
        if inline_metadata is None:  # auto: on, unless the root is on a network filesystem
            kind = mount_type(self.root)
            inline_metadata = not is_network(kind)
            if not inline_metadata:
                log.info(
                    "storage root on a network filesystem: metadata calls run in threads",
                    extra={"root": self.root, "fstype": kind},
                )
        self.inline_metadata = inline_metadata
        self._offload = Offload(threads, "dockyard-fs")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> FilesystemDriver:
        """From the ``storage.filesystem`` section (``maxthreads`` is capped at 64)."""
        return cls(
            params["rootdirectory"],
            fsync=params.get("fsync", True),
            threads=min(params.get("maxthreads", 100), 64),
            inline_metadata=_inline_setting(params.get("inlinemetadata", "auto")),
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in the driver's thread pool."""
        return await self._offload.run(fn, *args)

    def _full(self, path: str) -> str:
        return self.root if path == "/" else self.root + path

    def local_path(self, path: str) -> str | None:
        return self._full(path)

    # -- small files ---------------------------------------------------------------------------

    def _get(self, path: str) -> bytes:
        try:
            with open(self._full(path), "rb") as f:
                return f.read()
        except OSError as exc:
            raise _translate(exc, path) from exc

    def _get_small(self, path: str) -> bytes | None:
        """The whole file if it holds at most ``INLINE_READ`` bytes, else None (one read of one
        more byte than that tells which)."""
        try:
            fd = os.open(self._full(path), _RDONLY)
            try:
                data = os.read(fd, INLINE_READ + 1)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _translate(exc, path) from exc
        return data if len(data) <= INLINE_READ else None

    async def get_content(self, path: str) -> bytes:
        if self.inline_metadata:
            data = self._get_small(path)
            if data is not None:
                return data
        return await self.run(self._get, path)

    async def get_many(self, paths: Sequence[str]) -> list[bytes | None]:
        if not self.inline_metadata or len(paths) > INLINE_BATCH:
            return await self.run(each_or_none, self._get, paths)
        out: list[bytes | None] = []
        for path in paths:
            try:
                data = self._get_small(path)
                if data is None:  # larger than a link file: the rest in a thread
                    data = await self.run(self._get, path)
            except PathNotFound:
                data = None
            out.append(data)
        return out

    def _put(self, path: str, data: bytes, exclusive: bool) -> bool:
        full = self._full(path)
        directory = os.path.dirname(full)
        tmp = f"{full}.tmp-{uuid.uuid4().hex}"
        try:
            if exclusive and os.path.exists(full):
                return False
            os.makedirs(directory, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, data)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                # link() fails if the target exists: first writer wins, nobody sees a partial file.
                try:
                    os.link(tmp, full)
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
                return True
            os.rename(tmp, full)
            return True
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise _translate(exc, path) from exc

    async def put_content(self, path: str, data: bytes, *, if_absent: bool = False) -> bool:
        return await self.run(self._put, path, data, if_absent)

    def _put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for path, data in items:
            self._put(path, data, False)

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        await self.run(self._put_many, items)

    def _copy(self, src: str, dst: str) -> None:
        full_dst = self._full(dst)
        tmp = f"{full_dst}.tmp-{uuid.uuid4().hex}"
        try:
            os.makedirs(os.path.dirname(full_dst), exist_ok=True)
            shutil.copyfile(self._full(src), tmp)
            if self.fsync:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.rename(tmp, full_dst)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise _translate(exc, src) from exc

    async def copy(self, src: str, dst: str) -> None:
        await self.run(self._copy, src, dst)

    # -- streams -------------------------------------------------------------------------------

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        full = self._full(path)
        try:
            f = await self.run(_open_binary, full)
        except OSError as exc:
            raise _translate(exc, path) from exc
        ahead: asyncio.Future[bytes] | None = None
        try:
            await self.run(f.seek, offset)
            remaining = length

            def next_read() -> asyncio.Future[bytes] | None:
                if remaining is not None and remaining <= 0:
                    return None
                want = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
                return asyncio.ensure_future(self.run(f.read, want))

            # Read ahead: the next chunk is read from disk while this one is being sent.
            ahead = next_read()
            while ahead is not None:
                chunk = await ahead
                if not chunk:
                    ahead = None
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                ahead = next_read()
                yield chunk
        finally:
            if ahead is not None:
                with contextlib.suppress(BaseException):
                    await ahead
            await self.run(f.close)

    def _open_writer(self, path: str, create: bool) -> _Writer:
        full = self._full(path)
        try:
            if create:
                os.makedirs(os.path.dirname(full), exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if create else 0)
            fd = os.open(full, flags, 0o644)
        except OSError as exc:
            raise _translate(exc, path) from exc
        return _Writer(self, path, fd, os.fstat(fd).st_size)

    async def writer(self, path: str, *, create: bool = True) -> _Writer:
        return await self.run(self._open_writer, path, create)

    async def redirect_url(self, path: str, expires: float) -> str | None:
        return None

    def _hash(self, path: str, algorithm: str) -> tuple[str, int]:
        h = hashlib.new(algorithm)
        size = 0
        try:
            with open(self._full(path), "rb") as f:
                while chunk := f.read(_READ_CHUNK):
                    h.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise _translate(exc, path) from exc
        return h.hexdigest(), size

    async def hash_file(self, path: str, algorithm: str) -> tuple[str, int]:
        return await self.run(self._hash, path, algorithm)

    # -- metadata ------------------------------------------------------------------------------

    def _stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._full(path))
        except OSError as exc:
            raise _translate(exc, path) from exc
        token = (st.st_ino, st.st_mtime_ns, st.st_size, st.st_nlink)
        return FileInfo(path, st.st_size, st.st_mtime, stat.S_ISDIR(st.st_mode), token)

    async def stat(self, path: str) -> FileInfo:
        if self.inline_metadata:
            return self._stat(path)
        return await self.run(self._stat, path)

    async def stat_many(self, paths: Sequence[str], *, files: bool = False) -> list[FileInfo | None]:
        # A directory costs nothing more than a file here.
        if self.inline_metadata and len(paths) <= INLINE_BATCH:
            return each_or_none(self._stat, paths)
        return await self.run(each_or_none, self._stat, paths)

    def _tree(self, path: str, skip_prefix: str, depth: int | None) -> dict[str, list[str]]:
        base = self._full(path)
        out: dict[str, list[str]] = {}
        for directory, dirs, files in os.walk(base):
            rel = os.path.relpath(directory, base)
            names = [n for n in dirs + files if ".tmp-" not in n]
            out["" if rel == "." else rel] = names
            level = 0 if rel == "." else rel.count("/") + 1
            if depth is not None and level + 1 >= depth:
                dirs.clear()  # deep enough
            else:
                skip = skip_prefix or "/"  # no name starts with "/": an empty prefix skips nothing
                dirs[:] = [d for d in dirs if not d.startswith(skip) and ".tmp-" not in d]
        return out

    async def list_tree(
        self, path: str, *, skip_prefix: str = "_", depth: int | None = None
    ) -> dict[str, list[str]]:
        return await self.run(self._tree, path, skip_prefix, depth)

    def _delete_many(self, paths: Sequence[str]) -> list[bool]:
        return [self._delete(path) for path in paths]

    async def delete_many(self, paths: Sequence[str]) -> list[bool]:
        return await self.run(self._delete_many, paths)

    def _publish(self, src: str, dst: str, src_fd: int) -> bool:
        """Step 2 of ``commit``: ``src`` (open as ``src_fd``) becomes ``dst``, or goes if ``dst``
        is stored already (whose timestamp is then refreshed: GC liveness)."""
        full_src, full_dst = self._full(src), self._full(dst)
        try:
            if self._touch(dst):
                os.unlink(full_src)
                return False
            if self.fsync:
                os.fsync(src_fd)
            os.makedirs(os.path.dirname(full_dst), exist_ok=True)
            os.rename(full_src, full_dst)
        except OSError as exc:
            raise _translate(exc, src) from exc
        return True

    def _cleanup(self, older_than: float) -> int:
        removed = 0
        for directory, dirs, files in os.walk(self.root):
            for name in [*dirs, *files]:
                if ".tmp-" not in name:
                    continue
                full = os.path.join(directory, name)
                try:
                    if os.path.isdir(full) and not os.path.islink(full):
                        shutil.rmtree(full, ignore_errors=True)
                    elif os.lstat(full).st_mtime < older_than:
                        os.unlink(full)
                    else:
                        continue
                    removed += 1
                except FileNotFoundError:
                    continue
            dirs[:] = [d for d in dirs if ".tmp-" not in d]
        return removed

    async def cleanup(self, older_than: float) -> int:
        """Temporaries (``.tmp-`` names) of interrupted deletes go at once (only a delete makes a
        temporary directory, and it was removing it anyway); of interrupted writes, once last
        modified before ``older_than``, since a fresh one may be a write in progress."""
        return await self.run(self._cleanup, older_than)

    def _touch(self, path: str) -> bool:
        try:
            os.utime(self._full(path))
        except FileNotFoundError:
            return False
        return True

    def _delete(self, path: str) -> bool:
        full = self._full(path)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                # Rename first so a reader never walks a half-deleted tree.
                doomed = f"{full}.tmp-{uuid.uuid4().hex}"
                os.rename(full, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
            else:
                os.unlink(full)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise _translate(exc, path) from exc
        return True
