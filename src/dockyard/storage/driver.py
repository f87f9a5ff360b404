"""The storage driver interface.

Drivers know nothing about registries: they store byte strings under ``/``-separated paths that
match :data:`PATH_RE`. Registry logic (``storage.blobs``, ``storage.uploads``, ...) is written once
above this interface, and ``dockyard.testing.driver_suite`` is the shared test suite every driver
must pass.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from dockyard.errors import InvalidPath

PATH_RE = re.compile(r"(/[A-Za-z0-9._-]+)+")


def check_path(path: str) -> str:
    """Refuse anything that is not a plain absolute path of safe components."""
    if not PATH_RE.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise InvalidPath(path)
    return path


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool
    # Changes whenever the file or the directory's listing changes, where the backend can tell
    # cheaply (None: it cannot, and callers must not cache on it).
    token: Hashable | None = None


class FileWriter(Protocol):
    """An open, exclusively held, append-only writer (one upload session at a time)."""

    @property
    def size(self) -> int: ...

    async def write(self, data: bytes, hasher: Any | None = None) -> None:
        """Append ``data``; when ``hasher`` is given, update it with exactly the bytes written."""

    async def truncate(self, size: int) -> None: ...

    async def sync(self) -> None:
        """Make everything written durable (fsync where the backend has it)."""

    async def close(self) -> None: ...

    async def commit(
        self,
        dst: str,
        files: Sequence[tuple[str, bytes]] = (),
        remove: Sequence[str] = (),
        *,
        data: bytes = b"",
    ) -> bool:
        """Finish with the written file in one step (one round trip to the backend): append
        ``data`` (last bytes the caller has hashed already), make it
        ``dst``'s content as ``StorageDriver.publish`` does (True), or drop it and refresh ``dst``'s
        timestamp if ``dst`` exists (False); then write the small ``files`` like ``put_many``,
        delete ``remove`` (missing paths are fine), and close the writer, also when a step fails."""


class StorageDriver(Protocol):
    name: str

    async def get_content(self, path: str) -> bytes:
        """Whole content of a small file; raise PathNotFound."""

    async def put_content(self, path: str, data: bytes) -> None:
        """Write a small file atomically (readers see the old or the new content, never a mix)."""

    async def put_if_absent(self, path: str, data: bytes) -> bool:
        """Write atomically unless the file exists; True if this call created it."""

    def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream a file from ``offset``; raise PathNotFound on the first iteration."""

    async def writer(self, path: str, *, append: bool = True, create: bool = True) -> FileWriter:
        """Open ``path`` for appending, held exclusively; raise UploadBusy if already held, and
        PathNotFound if it does not exist and ``create`` is false."""

    async def stat(self, path: str) -> FileInfo:
        """Raise PathNotFound."""

    async def exists(self, path: str) -> bool: ...

    # Batches: several small operations for the price of one round trip to the backend.

    async def stat_many(self, paths: Sequence[str]) -> list[FileInfo | None]:
        """``stat`` of each path, None where it does not exist."""

    async def get_many(self, paths: Sequence[str]) -> list[bytes | None]:
        """``get_content`` of each path, None where it does not exist."""

    async def delete_many(self, paths: Sequence[str]) -> list[bool]:
        """``delete`` each path (file or tree); False where it did not exist."""

    async def touch_many(self, paths: Sequence[str]) -> list[bool]:
        """``touch`` each path; False where it does not exist."""

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """``put_content`` of each item, in order (each one atomic)."""

    async def publish(self, src: str, dst: str) -> bool:
        """Make ``src`` durable and move it to ``dst``, unless ``dst`` exists: then touch ``dst``
        and remove ``src``. True if ``src`` became ``dst``."""

    async def list_dir(self, path: str) -> list[str]:
        """Names of the direct children of a directory; raise PathNotFound."""

    async def list_tree(self, path: str, *, skip_prefix: str = "_") -> dict[str, list[str]]:
        """Every directory below ``path`` (relative, "" for ``path`` itself) → its child names,
        not descending into children whose name starts with ``skip_prefix``; {} if missing."""

    async def move(self, src: str, dst: str) -> None:
        """Atomically move a file, replacing ``dst``; parent directories are created."""

    async def delete(self, path: str) -> None:
        """Delete a file or a whole directory tree; raise PathNotFound."""

    async def sweep_temporaries(self, path: str, older_than: float) -> int:
        """Remove leftovers of interrupted deletes and atomic writes below ``path`` (names
        containing ``.tmp-``): directories always (only a delete makes them, and it was removing
        them anyway), files only if last modified before ``older_than`` (epoch seconds), since a
        fresh one may be a write in progress. Returns how many entries went."""

    async def hash_file(self, path: str, algorithm: str) -> tuple[str, int]:
        """Hex digest and size of a stored file, computed by the backend without a round trip per chunk."""

    def local_path(self, path: str) -> str | None:
        """An OS path for zero-copy serving (sendfile/pathsend), or None."""

    async def touch(self, path: str) -> bool:
        """Set a file's modification time to now; False if it does not exist."""

    def lock(
        self, name: str, *, shared: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[None]:
        """A lock held across every process serving this store (readers/writer when ``shared``).

        With ``wait=False`` raise :class:`LockBusy` instead of waiting."""
