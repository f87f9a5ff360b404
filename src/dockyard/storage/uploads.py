"""Upload sessions: create, append (streamed or chunked), status, commit, cancel.

Bytes are hashed while they are written, with the session's algorithm (sha256, or what the
client's ``digest-algorithm`` asked for: kept in the session's ``digestalgorithm`` file), so the
digest never needs the data read back:

- the running hash of a session stays in the process that last wrote to it (a keep-alive
  connection stays on one worker), keyed by how many bytes it covers;
- a running hash is made when the first bytes arrive, of the kind the request needs: a request
  that finishes the session (most blobs arrive whole in the PUT) never saves its state, so it
  hashes with ``hashlib``; only a PATCH, whose state is saved, uses ``oci.resumable`` (a ctypes
  context whose every call drops the GIL: ~40 us more per blob, paid only where it buys something);
- after each acknowledged PATCH its state (``oci.resumable``) is saved with the session's
  coordinator record, so the next PATCH or the PUT continues it on any worker or replica;
- only when neither fits the stored size (a state that does not restore: another libcrypto, a
  corrupt record, a PATCH that failed half-way; or a closing digest of another algorithm than
  the session's) is the digest computed from the stored data: the fallback, counted in
  :attr:`UploadStore.rehashed`.

A blob becomes visible only when the digest matches, by atomic rename into ``blobs/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from dockyard.coord.base import Coordinator
from dockyard.errors import (
    DigestMismatch,
    LockBusy,
    PathNotFound,
    QuotaExceeded,
    RangeMismatch,
    UploadInUse,
    UploadUnknown,
)
from dockyard.events import BlobPushed, EventSink, NullSink
from dockyard.events.order import Ordering, Unordered
from dockyard.oci import resumable
from dockyard.oci.digest import SUPPORTED_ALGORITHMS, Digest, Hasher
from dockyard.storage import paths
from dockyard.storage.blobs import BlobStore
from dockyard.storage.driver import FileWriter
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.liveness import blob_key
from dockyard.storage.quota import Quotas

GC_LOCK = "gc"  # shared by writers that make content reachable; exclusive for a sweep batch
BATCH = 1 << 20  # bytes handed to the writer thread at once
# A blob's last bytes up to this size are hashed on the event loop (~45 us) and written by the
# commit itself rather than in a write of their own.
HOLD = 64 << 10
_MAX_HASHERS = 4096
log = logging.getLogger(__name__)


SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")  # ids a session record can have (ours are UUIDs)


def _lock_name(name: str, upload_id: str) -> str:
    """The coordinator lock that makes one request at a time the writer of a session (any id a
    client sends maps to a valid lock name)."""
    return "upload-" + hashlib.sha256(f"{name}/{upload_id}".encode()).hexdigest()[:40]


class UploadStore:
    def __init__(
        self,
        driver: CheckedDriver,
        blobs: BlobStore,
        coordinator: Coordinator,
        quotas: Quotas | None = None,
        events: EventSink | None = None,
        ordering: Ordering | None = None,
    ) -> None:
        self.driver = driver
        self.ordering = ordering or Unordered()
        self.blobs = blobs
        self.coordinator = coordinator
        self.quotas = quotas
        self.events = events or NullSink()
        # (repository, session) -> (bytes hashed, algorithm, running hash; None for a session
        # started here that nothing was written to yet)
        self._hashers: OrderedDict[tuple[str, str], tuple[int, str, Hasher | None]] = OrderedDict()
        # open writer -> (the session's lock, or None for a fresh session; its size when opened)
        self._held: dict[FileWriter, tuple[AbstractAsyncContextManager[None] | None, int]] = {}
        self.rehashed = 0  # digests computed by reading the stored data back (the fallback)

    async def start(self, name: str, algorithm: str = "sha256") -> str:
        """A new session hashed with ``algorithm`` (one ``resumable.new`` knows: the API has
        checked): its (empty) data and start time in storage. Its coordinator record is made by the
        first chunk (:meth:`_record`), not here: most blobs arrive whole in the request that
        finishes the session, which would only delete it again, and until a chunk arrives the
        data's own timestamp says everything the purge needs. Its running hash is made by the
        request that brings the first bytes (:meth:`_take_hasher`); only the algorithm is kept."""
        upload_id = str(uuid.uuid4())
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        files = [(paths.upload_startedat(name, upload_id), started.encode())]
        if algorithm != "sha256":
            files.append((paths.upload_algorithm(name, upload_id), algorithm.encode()))
        files.append((paths.upload_data(name, upload_id), b""))
        await self.driver.put_many(files)
        self._hashers[(name, upload_id)] = (0, algorithm, None)
        self._trim_hashers()
        return upload_id

    async def _algorithm(self, name: str, upload_id: str) -> str:
        """The algorithm a session was started with (sha256 unless its file says otherwise)."""
        try:
            text = (await self.driver.get_content(paths.upload_algorithm(name, upload_id))).decode()
        except (PathNotFound, UnicodeDecodeError):
            return "sha256"
        return text if text in SUPPORTED_ALGORITHMS else "sha256"

    async def _record(self, name: str, upload_id: str, offset: int, hasher: Hasher | None) -> None:
        """The session's record in the coordinator: how far it got, the running hash of those
        bytes (if there is one), and that it was active now (the purge goes by it). The first
        chunk of a session (or of one another tool started) makes it; an empty session has none,
        so a session still empty when it is finished has no record to remove (:meth:`finish`)."""
        if not SESSION_ID.fullmatch(upload_id) or offset == 0:
            return
        state = resumable.save(hasher) if hasher is not None else None
        if await self.coordinator.update_session(upload_id, offset=offset, hash_state=state) is None:
            await self.coordinator.create_session(upload_id, name)
            await self.coordinator.update_session(upload_id, offset=offset, hash_state=state)

    async def _forget(self, upload_id: str) -> None:
        if SESSION_ID.fullmatch(upload_id):
            await self.coordinator.delete_session(upload_id)

    async def size(self, name: str, upload_id: str) -> int:
        try:
            return (await self.driver.stat(paths.upload_data(name, upload_id))).size
        except PathNotFound:
            raise UploadUnknown(upload_id) from None

    async def _open(self, name: str, upload_id: str, *, new: bool = False) -> FileWriter:
        """The session's data file, with the session's coordinator lock held until
        :meth:`_close_opened`. A session exists while its data file does (``start`` creates it;
        commit and cancel remove it); ``new`` creates a fresh one, under an id made here that no
        other request can know, so it needs no lock."""
        lock = None if new else self.coordinator.lock(_lock_name(name, upload_id), wait=False)
        if lock is not None:
            try:
                await lock.__aenter__()
            except LockBusy:
                raise UploadInUse(upload_id) from None
        try:
            writer = await self.driver.writer(paths.upload_data(name, upload_id), create=new)
        except BaseException as exc:
            if lock is not None:
                await lock.__aexit__(None, None, None)
            if isinstance(exc, PathNotFound):
                raise UploadUnknown(upload_id) from None
            raise
        self._held[writer] = (lock, writer.size)
        return writer

    async def _take_hasher(
        self, key: tuple[str, str], offset: int, algorithm: str | None, saved: bool
    ) -> tuple[str, Hasher] | None:
        """The session's running hash if it covers exactly the ``offset`` bytes stored: this
        process's own, else the state saved with the session's record; a fresh one for an empty
        session, of ``algorithm`` when the caller knows it (a one-request push) or else of the
        session's, resumable if its state will be ``saved``; else None (nothing, or a state that
        does not restore: rehash at commit)."""
        cached = self._hashers.pop(key, None)
        if cached is not None and cached[0] == offset:
            if cached[2] is not None:
                return cached[1], cached[2]
            algorithm = cached[1]
        if offset == 0:
            algorithm = algorithm or await self._algorithm(*key)
            return algorithm, resumable.new(algorithm) if saved else hashlib.new(algorithm)
        upload_id = key[1]
        record = await self.coordinator.get_session(upload_id) if SESSION_ID.fullmatch(upload_id) else None
        if record is None or record.hash_state is None:
            return None
        restored = resumable.restore(record.hash_state, offset)
        if restored is None:
            log.warning(
                "the saved hash state of an upload does not restore here; its digest will be "
                "computed from the stored data",
                extra={"upload": upload_id, "offset": offset, "recorded_offset": record.offset},
            )
            return None
        return restored.name, restored

    def _keep_hasher(self, key: tuple[str, str], offset: int, algorithm: str, hasher: Hasher | None) -> None:
        if hasher is None:
            return
        self._hashers[key] = (offset, algorithm, hasher)
        self._trim_hashers()

    def _trim_hashers(self) -> None:
        while len(self._hashers) > _MAX_HASHERS:
            self._hashers.popitem(last=False)

    async def _pump(
        self,
        opening: asyncio.Future[FileWriter],
        key: tuple[str, str],
        chunks: AsyncIterator[bytes],
        check: Callable[[FileWriter], None] | None = None,
        hold: int = 0,
        known: str | None = None,
        saved: bool = False,
    ) -> tuple[FileWriter, bytes, Hasher | None]:
        """Append a request body to the session's file, which is opened (``opening``) while the
        first bytes arrive; ``check`` vets the open writer before anything is written. Each batch
        is hashed and written in a worker thread while the next one is received.

        With ``hold``, a last batch of at most that many bytes is hashed here and returned instead
        of written, for the caller to hand to ``FileWriter.commit`` (one trip to storage fewer).
        Returns the writer, the held bytes and the running hash of everything (None if there is
        none: the digest must then come from the stored data); ``saved``: its state will be saved
        with the session's record (a PATCH), so a fresh one must be resumable."""
        writer: FileWriter | None = None
        hasher: Hasher | None = None
        algorithm = "sha256"
        pending: asyncio.Task[None] | None = None
        parts: list[bytes] = []
        buffered = 0
        held = b""

        async def opened() -> FileWriter:
            nonlocal writer, hasher, algorithm
            if writer is None:
                writer = await opening
                if check is not None:
                    check(writer)
                taken = await self._take_hasher(key, writer.size, known, saved)
                if taken is not None:
                    algorithm, hasher = taken
            return writer

        try:
            async for chunk in chunks:
                parts.append(chunk)
                buffered += len(chunk)
                if buffered >= BATCH:
                    ready = await opened()
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(ready.write(b"".join(parts), hasher))
                    parts, buffered = [], 0
            ready = await opened()
            if pending is not None:
                await pending
                pending = None
            if parts and hasher is not None and buffered <= hold:
                held = b"".join(parts)
                hasher.update(held)
            elif parts:
                await ready.write(b"".join(parts), hasher)
        except BaseException:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)
            hasher = None  # the stored bytes and the hash may disagree now; rehash at commit
            raise
        finally:
            if writer is not None:
                self._keep_hasher(key, writer.size + len(held), algorithm, hasher)
        return ready, held, hasher

    async def append(
        self, name: str, upload_id: str, chunks: AsyncIterator[bytes], *, start: int | None = None
    ) -> int:
        """Append a chunk; with ``start`` (from Content-Range) it must continue where the data ends
        (RangeMismatch otherwise)."""

        def continues(writer: FileWriter) -> None:
            if start is not None and start != writer.size:
                raise RangeMismatch(start, writer.size)

        opening = asyncio.ensure_future(self._open(name, upload_id))
        try:
            writer, _, hasher = await self._pump(opening, (name, upload_id), chunks, continues, saved=True)
            await self._record(name, upload_id, writer.size, hasher)
            return writer.size
        finally:
            await self._close_opened(opening)

    def local_data(self, name: str, upload_id: str) -> str | None:
        """The OS path of a session's data file while it is written, if the driver has one."""
        return self.driver.local_path(paths.upload_data(name, upload_id))

    async def monolithic(self, name: str, digest: Digest, chunks: AsyncIterator[bytes]) -> int:
        """A whole blob in one request (``POST ?digest=``): a session only for the request's life."""
        return await self.finish(name, str(uuid.uuid4()), digest, chunks, new=True)

    async def finish(
        self,
        name: str,
        upload_id: str,
        digest: Digest,
        chunks: AsyncIterator[bytes] | None,
        *,
        new: bool = False,
    ) -> int:
        """Append the last bytes, verify the digest, and publish the blob; returns its size."""
        key = (name, upload_id)
        opening = asyncio.ensure_future(self._open(name, upload_id, new=new))
        try:
            held = b""
            hasher: Hasher | None
            if chunks is not None:
                known = digest.algorithm if new else None  # a one-request push: no session file
                writer, held, hasher = await self._pump(opening, key, chunks, hold=HOLD, known=known)
            else:
                writer = await opening
                taken = await self._take_hasher(key, writer.size, None, False)
                hasher = taken[1] if taken is not None else None
            size = writer.size + len(held)
            recorded = self._held[writer][1] > 0  # an empty session has no record (``_record``)
            self._hashers.pop(key, None)
            if hasher is not None and hasher.name == digest.algorithm:
                actual = hasher.hexdigest()
            else:
                # The digest comes from the stored bytes, which an open writer may not have made
                # readable yet (on an object store they are parts of an unfinished multipart
                # upload): write them all, flush the writer (the bytes become the object at the
                # path), and hash that, still under the session's lock. Only here: with a
                # running hash (the common case) nothing is read back.
                if held:
                    await writer.write(held)
                    held = b""
                await writer.flush()
                actual, _ = await self.driver.hash_file(paths.upload_data(name, upload_id), digest.algorithm)
                self.rehashed += 1
                log.info(
                    "upload digest computed from the stored data (no running hash of it here)",
                    extra={"upload": upload_id, "size": size, "algorithm": digest.algorithm},
                )
            if actual != digest.hex:
                await self._discard(name, upload_id, writer)
                raise DigestMismatch(str(digest), f"{digest.algorithm}:{actual}", upload=True)
            if self.quotas is not None:
                try:
                    await self.quotas.check(name, digest, size)
                except QuotaExceeded:
                    await self._discard(name, upload_id, writer)
                    raise
            # The held last bytes written, durable, renamed into blobs/ (or touched if stored
            # already), linked into the repository, the session removed and the writer closed:
            # one trip to the driver, under the shared gc lock so a concurrent sweep sees the
            # fresh timestamp.
            # Under the repository's order (events.order): the event is queued in the same hold.
            async with self.ordering.change(name):
                async with self.coordinator.lock(GC_LOCK, shared=True):
                    await self.coordinator.referenced([blob_key(digest)])
                    await writer.commit(
                        paths.blob_data(digest),
                        [(paths.layer_link(name, digest), paths.link_content(digest))],
                        [paths.upload_dir(name, upload_id)],
                        data=held,
                    )
                self.events.emit(BlobPushed(name, str(digest), size))
        except BaseException:
            if new:
                await self._discard(name, upload_id)
            raise
        finally:
            await self._close_opened(opening)
        self._hashers.pop(key, None)
        if recorded:
            await self._forget(upload_id)
        if self.quotas is not None:
            await self.quotas.added(name, digest, size)
        return size

    async def _discard(self, name: str, upload_id: str, writer: FileWriter | None = None) -> None:
        """Drop the session: what ``writer`` (if open) wrote, then the rest of its files."""
        self._hashers.pop((name, upload_id), None)
        if writer is not None:
            await writer.abort()
        with contextlib.suppress(PathNotFound):
            await self.driver.delete(paths.upload_dir(name, upload_id))
        await self._forget(upload_id)

    async def _close_opened(self, opening: asyncio.Future[FileWriter]) -> None:
        """Close the writer ``opening`` yields, whenever it does (closing twice is harmless), and
        let the session's lock go."""
        try:
            writer = await asyncio.shield(opening)
        except Exception:
            return
        try:
            await writer.close()
        finally:
            lock, _ = self._held.pop(writer, (None, 0))
            if lock is not None:
                await lock.__aexit__(None, None, None)

    async def cancel(self, name: str, upload_id: str) -> None:
        if not await self.driver.exists(paths.upload_data(name, upload_id)):
            raise UploadUnknown(upload_id)
        await self._discard(name, upload_id)
