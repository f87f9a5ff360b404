"""The storage driver interface: a narrow set of object-store primitives.

Drivers know nothing about registries: they store byte strings under ``/``-separated paths that
match :data:`PATH_RE`. Registry logic (``storage.blobs``, ``storage.uploads``, ...) is written once
above this interface and reaches every driver through one wrapper,
:class:`dockyard.storage.drivers.checked.CheckedDriver` (path checks, batches, error
normalisation), and ``dockyard.testing.driver_suite`` is the shared test suite every driver must
pass.

The primitives map one to one onto an object store (S3: GetObject, PutObject, ranged GetObject,
HeadObject, ListObjectsV2, DeleteObjects, CopyObject, multipart upload, presigned URLs,
ListMultipartUploads + Abort), so a driver for one is a thin translation. A driver may also
offer any of the batch methods of :class:`NativeBatches`, when it can do a batch for the price
of one call (the filesystem driver: one trip to its worker threads); the wrapper falls back to
a loop over the primitive otherwise.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from dockyard.errors import InvalidPath, PathNotFound
from dockyard.oci.digest import Hasher

# Components of safe characters, none of them ``.`` or ``..`` (one regex: this runs on every
# storage call, and a split-and-scan after the match doubled its cost).
PATH_RE = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)+")
T = TypeVar("T")


def check_path(path: str) -> str:
    """Refuse anything that is not a plain absolute path of safe components."""
    if not PATH_RE.fullmatch(path):
        raise InvalidPath(path)
    return path


def each_or_none(fn: Callable[[str], T], paths: Sequence[str]) -> list[T | None]:
    """``fn`` of each path, None where it raises :class:`PathNotFound`: the one loop a driver's
    native batch runs (in its own thread, say) where it has no cheaper batch call."""
    out: list[T | None] = []
    for path in paths:
        try:
            out.append(fn(path))
        except PathNotFound:
            out.append(None)
    return out


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
    """A writer shaped like a multipart upload: ``write`` parts, then either
    ``commit`` (the bytes become a file), ``abort`` (they are dropped) or ``close`` (they stay
    for a later writer on the same path to continue); ``flush`` makes them readable meanwhile."""

    @property
    def size(self) -> int:
        """Bytes written so far, by this writer and the ones before it on the same path."""

    async def write(self, data: bytes, hasher: Hasher | None = None) -> None:
        """Append ``data``; when ``hasher`` is given, update it with exactly the bytes written."""

    async def close(self) -> None:
        """Release the writer and keep what was written, durably, for a later writer on the
        same path (``stat`` gives its size); closing twice is harmless. The bytes need not be
        readable yet (an object store keeps them in an unfinished multipart upload)."""

    async def flush(self) -> None:
        """Make everything written so far readable at the path (``read``, ``hash_file``,
        ``copy``); the writer stays open. Costs an object store the completion of its upload."""

    async def abort(self) -> None:
        """Drop everything written to this path and release the writer."""

    async def commit(
        self,
        dst: str,
        files: Sequence[tuple[str, bytes]] = (),
        remove: Sequence[str] = (),
        *,
        data: bytes = b"",
    ) -> bool:
        """Finish the upload as ordered steps, each idempotent, each done before the next starts:

        1. append ``data`` (the last bytes, already hashed by the caller);
        2. the written bytes become ``dst``, durably: unless ``dst`` exists already, in which
           case they are dropped and ``dst``'s modification time is refreshed (True if they
           became ``dst``);
        3. the small ``files`` are written, each atomically (links to ``dst``: never before it);
        4. the paths in ``remove`` are deleted (missing ones are fine: the session last);
        5. the writer is released, also when a step fails.

        A crash between steps leaves a state that a retry or a collection finishes: a blob
        nothing links to yet, or a session that points at a stored blob. How many calls to the
        backend the steps take is the driver's business (the filesystem driver takes one)."""


class StorageDriver(Protocol):
    name: str

    async def get_content(self, path: str) -> bytes:
        """Whole content of a small file; raise PathNotFound."""

    async def put_content(self, path: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Write a small file atomically (readers see the old or the new content, never a mix);
        with ``if_absent``, only if it does not exist yet. True if this call wrote it."""

    def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream a file from ``offset`` (a range read); raise PathNotFound on the first iteration."""

    async def stat(self, path: str) -> FileInfo:
        """Size and modification time of a file, or ``is_dir`` for a prefix; raise PathNotFound."""

    async def list_tree(
        self, path: str, *, skip_prefix: str = "_", depth: int | None = None
    ) -> dict[str, list[str]]:
        """Walk a prefix: every directory below ``path`` (relative, "" for ``path`` itself) →
        its child names, not descending into children whose name starts with ``skip_prefix``,
        nor deeper than ``depth`` levels (1: ``path``'s children only); {} if missing."""

    async def delete_many(self, paths: Sequence[str]) -> list[bool]:
        """Delete each path, a file or a whole prefix; False where nothing was there."""

    async def copy(self, src: str, dst: str) -> None:
        """Copy a file to ``dst`` atomically, replacing it; raise PathNotFound."""

    async def writer(self, path: str, *, create: bool = True) -> FileWriter:
        """Open ``path`` to continue writing it; raise PathNotFound if it does not exist and
        ``create`` is false. One writer per path at a time is the caller's business (the
        coordinator's upload lock), not the driver's."""

    async def redirect_url(self, path: str, expires: float) -> str | None:
        """A URL a client may fetch the file from directly for ``expires`` seconds (a presigned
        object-store URL), or None (filesystem, memory)."""

    def local_path(self, path: str) -> str | None:
        """An OS path for zero-copy serving (sendfile/pathsend), or None."""

    async def cleanup(self, older_than: float) -> int:
        """Remove the leftovers of interrupted writes and deletes (temporary files, incomplete
        multipart uploads) last modified before ``older_than`` (epoch seconds), never anything
        written through this interface. Returns how many went."""


class NativeBatches(Protocol):
    """Batches a driver may offer when it can do one for the price of a single call; each is
    optional (the wrapper loops over the primitive otherwise) and means what its loop would."""

    async def stat_many(self, paths: Sequence[str], *, files: bool = False) -> list[FileInfo | None]:
        """``files``: the caller counts a directory as missing, so none need be looked for."""

    async def get_many(self, paths: Sequence[str]) -> list[bytes | None]: ...

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None: ...

    async def hash_file(self, path: str, algorithm: str) -> tuple[str, int]:
        """Hex digest and size of a stored file, without a trip per chunk."""
