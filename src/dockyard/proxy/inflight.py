"""Single-flight blob fills: one upstream fetch per missing blob, however many ask for it at once.

The first request for a blob the cache lacks starts a *fill*: a task, detached from the request,
that holds the coordinator lock ``proxy-fill-<key>`` (so one process of one machine, or with a
database one replica, fetches), streams the upstream's bytes into an upload session of the
registry (digest verified before anything is committed: wrong bytes or a break leave nothing).
A small ``.meta`` file in the machine's *spool* directory (size, fill id, state, source) tells the
machine's other processes where the bytes so far are: in the upload session's own data file when
the driver writes a local file (the filesystem's: the file becomes the blob at commit by a rename,
so an open descriptor reads on), else in a copy the fill writes beside the meta (S3: an upload is
parts of an unfinished multipart upload, unreadable; and a root on a network filesystem, where
following the file's growth would wait on the server). Not writing that copy took a cold 300 MiB
pull from 1.05-1.20 to 0.86-0.95 s of the cache's CPU (``bench.proxy``'s cold pull, 3 runs each).

Requesters in the fill's own process read it from memory: the fill hands each upstream chunk
to them as it arrives (:class:`Progress`: the most recent ``WINDOW`` bytes, older ones from the
source file), wakes them without polling, and tells them the moment the blob is committed.
Requesters in another worker process of the machine read the source file (polled). Either way a
reader sends the blob's last byte only once the registry holds the verified blob, so a client
never receives a whole body with the wrong bytes (an upstream that lied or broke off ends every
reader's response early: the client sees a short body and retries). Requesters on another replica
(no meta there) wait for the commit and then read the registry; the longest wait is the whole
fill, which each upstream read's timeout bounds per chunk. A client that disconnects does not
stop the fill (it belongs to no request): the bytes are cached for the next one.

Each upstream byte crosses Python once on its way to the first client (no re-read, no thread
hop); the upload session (and a spool copy) are written in batches, in worker threads, while the
next bytes arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import orjson

from dockyard import smallfiles
from dockyard.errors import BlobUnknown, LockBusy
from dockyard.oci.digest import Digest
from dockyard.storage.model import BlobSource, Chunks
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.proxy")

POLL = 0.01  # seconds between looks at another process's fill (a spool write wakes no one)
SPOOL_BATCH = 1 << 20  # bytes gathered before a spool write: other processes' readers lag by this
NOTIFY = 1 << 20  # bytes received before this process's waiting readers are woken again
WINDOW = 8 << 20  # the most recent bytes of a fill kept in memory for this process's readers
READ = 1 << 20  # the largest piece a reader sends at once
Fetch = Callable[[], AbstractAsyncContextManager[tuple[int | None, Chunks]]]


class FillFailed(Exception):
    """A fill ended without a verified blob while a client was being sent its bytes: the response
    is cut short (the client sees a broken body and retries)."""


@dataclass(frozen=True, slots=True)
class Key:
    """One fill: a blob for one stored repository."""

    stored: str
    digest: Digest

    @property
    def slug(self) -> str:
        return hashlib.sha256(f"{self.stored}@{self.digest}".encode()).hexdigest()[:40]

    @property
    def lock(self) -> str:
        return f"proxy-fill-{self.slug}"


@dataclass(frozen=True, slots=True)
class Meta:
    fill: str
    size: int | None
    state: str  # "filling" or "failed"
    source: str | None = None  # the file holding the bytes so far, when not the spool's data file


class Spool:
    """The directory of spool files: ``<slug>.data`` (the bytes so far) and ``<slug>.meta``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def data(self, key: Key) -> str:
        return os.path.join(self.directory, f"{key.slug}.data")

    def meta_path(self, key: Key) -> str:
        return os.path.join(self.directory, f"{key.slug}.meta")

    def write_meta(self, key: Key, meta: Meta) -> None:
        """Replace ``key``'s meta file: between the upstream's answer and the client's first byte,
        so with ``smallfiles`` (a text-mode ``open`` and ``json.dump`` took 0.3-0.6 ms there)."""
        doc = {"fill": meta.fill, "size": meta.size, "state": meta.state, "source": meta.source}
        smallfiles.replace(self.meta_path(key), orjson.dumps(doc), 0o600)

    def read_meta(self, key: Key) -> Meta | None:
        try:
            raw = orjson.loads(smallfiles.read(self.meta_path(key)))
            source = raw.get("source")
            return Meta(str(raw["fill"]), raw["size"], str(raw["state"]), str(source) if source else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def source(self, key: Key, meta: Meta | None) -> str:
        """Where a reader finds the bytes of ``key``'s fill so far."""
        return meta.source if meta is not None and meta.source else self.data(key)

    def remove(self, key: Key, *, meta: bool = True) -> None:
        for path in (self.data(key), self.meta_path(key)) if meta else (self.data(key),):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class Progress:
    """A fill running in this process, as its readers here see it: how many bytes arrived, the
    most recent of them in memory (``WINDOW``; older ones are in the spool, which is written
    before they are dropped), and how it ended. Waiting readers are woken by a future, each
    ``NOTIFY`` bytes and at the end: no polling, no thread hop for bytes in memory."""

    def __init__(self, fill: str, size: int | None, source: str | None = None) -> None:
        self.fill = fill
        self.size = size
        self.source = source  # the file behind the window, when not the spool's data file
        self.received = 0  # bytes from the upstream so far
        self.spooled = 0  # of which in the spool file
        self.start = 0  # the offset of chunks[0]
        self.chunks: deque[bytes] = deque()
        self.committed = False  # the registry holds the verified blob
        self.failure: str | None = None  # why the fill ended without a blob
        self._woken_at = -1
        self._wake: asyncio.Future[None] | None = None

    @property
    def ended(self) -> bool:
        return self.committed or self.failure is not None

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.received += len(chunk)
        self._trim()
        if self._woken_at < 0 or self.received - self._woken_at >= NOTIFY:
            self._notify()

    def spooled_to(self, offset: int) -> None:
        self.spooled = offset
        self._trim()

    def end(self, failure: str | None) -> None:
        self.committed = failure is None
        self.failure = failure
        self._notify()

    def _trim(self) -> None:
        chunks = self.chunks
        while chunks and self.received - self.start - len(chunks[0]) >= WINDOW:
            if self.start + len(chunks[0]) > self.spooled:
                return  # not in the spool yet: a reader behind the window needs it
            self.start += len(chunks.popleft())

    def _notify(self) -> None:
        self._woken_at = self.received
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def take(self, pos: int, stop: int) -> bytes | None:
        """Bytes ``pos`` up to ``stop`` (at most ``READ``) from memory, or None when ``pos`` is
        before the window (those are in the spool)."""
        if pos < self.start:
            return None
        stop = min(stop, pos + READ)
        parts: list[memoryview] = []
        offset = self.start
        for chunk in self.chunks:
            after = offset + len(chunk)
            if after > pos:
                parts.append(memoryview(chunk)[max(pos - offset, 0) : stop - offset])
            if after >= stop:
                break
            offset = after
        return b"".join(parts)

    async def changed(self, patience: float) -> bool:
        """Wait until more bytes arrive or the fill ends; False if nothing came for ``patience``."""
        before = self.received
        if self.ended:
            return True
        if self._wake is None:
            self._wake = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience):
                await asyncio.shield(self._wake)
        return self.received != before or self.ended


class Ready:
    """How a fill began, for the requesters of this process: its ``Progress`` once the upstream
    answered, or why it could not begin. Each requester waits on a future of its own, which the
    fill settles directly, so a requester is woken in the loop's next turn; a shared future
    awaited through ``asyncio.shield`` takes two turns, and in the turn between, the fill reads
    on from the upstream while the client waits for its first byte. A cancelled requester
    cancels only its own future."""

    __slots__ = ("_outcome", "_waiters")

    def __init__(self) -> None:
        self._outcome: Progress | BaseException | None = None
        self._waiters: list[asyncio.Future[Progress]] = []

    def done(self) -> bool:
        return self._outcome is not None

    def set_result(self, progress: Progress) -> None:
        self._settle(progress)

    def set_exception(self, exc: BaseException) -> None:
        self._settle(exc)

    def _settle(self, outcome: Progress | BaseException) -> None:
        self._outcome = outcome
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():  # its requester was cancelled
                continue
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)

    async def wait(self) -> Progress:
        outcome = self._outcome
        if outcome is None:
            waiter: asyncio.Future[Progress] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            return await waiter
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Fills:
    """The fills of one worker process; ``fetches`` counts the upstream fetches it began, and
    ``running`` holds those in flight, each as the ``Ready`` of its ``Progress`` (settled once
    the upstream answered), which this process's requesters read."""

    def __init__(self, registry: Registry, spool: Spool, *, upload_files: bool = True) -> None:
        """``upload_files`` false: always write the spool copy, even where the upload's file is
        local (a store root on a network filesystem, where the ``stat`` that follows the upload
        file's growth would wait on the server, on the loop)."""
        self.registry = registry
        self.spool = spool
        self.upload_files = upload_files
        self.tasks: set[asyncio.Task[None]] = set()
        self.running: dict[Key, Ready] = {}
        self.fetches = 0

    async def open(self, stored: str, digest: Digest, fetch: Fetch, patience: float) -> BlobSource:
        """The blob, from the registry when it holds it, else from a fill (this request's or the
        one in progress). ``patience`` is how long a reader waits for bytes that do not come."""
        key = Key(stored, digest)
        while True:
            ready = self.running.get(key)
            if ready is None:
                with contextlib.suppress(BlobUnknown):
                    return await self.registry.open_blob(stored, digest)
                ready = self.running.get(key)  # one may have begun meanwhile
            if ready is None:
                ready = self.running[key] = Ready()
                task = asyncio.create_task(self._fill(key, fetch, ready))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            try:
                progress = await ready.wait()
            except LockBusy:
                source = await self._follow(key, patience)
                if source is not None:
                    return source
                continue
            if progress.size is not None:
                return LiveSource(self, key, progress, progress.size, patience)
            while not progress.ended:  # no Content-Length: readers cannot be told a size; wait
                await progress.changed(patience)

    async def _follow(self, key: Key, patience: float) -> BlobSource | None:
        """A reader of the fill another process started, or None to try again (it ended, or it
        runs elsewhere and this machine has no spool of it: then wait for its commit)."""
        meta = self.spool.read_meta(key)
        if meta is not None and meta.state == "filling" and meta.size is not None:
            return SpoolSource(self, key, meta.fill, meta.size, patience, self.spool.source(key, meta))
        await asyncio.sleep(POLL * (1 if meta is not None else 5))
        return None

    async def _fill(self, key: Key, fetch: Fetch, ready: Ready) -> None:
        lock = self.registry.coordinator.lock(key.lock, wait=False)
        try:
            await lock.__aenter__()
        except BaseException as exc:
            ready.set_exception(exc)
            self._forget(key, ready)
            return
        fill = uuid.uuid4().hex
        progress: Progress | None = None
        try:
            with contextlib.suppress(BlobUnknown):  # committed just before the lock was free
                await self.registry.stat_blob(key.stored, key.digest)
                progress = Progress(fill, None)
                progress.end(None)
                ready.set_result(progress)
                return
            self.fetches += 1
            async with fetch() as (size, chunks):
                upload = str(uuid.uuid4())
                # A driver whose upload file is a local file (the filesystem's) needs no copy of the
                # bytes: readers behind the window, and other processes' readers, read that file.
                local = self.registry.uploads.local_data(key.stored, upload) if self.upload_files else None
                fd = (
                    -1
                    if local
                    else os.open(self.spool.data(key), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                )
                relay = _Relay(fd, progress := Progress(fill, size, local))
                try:
                    self.spool.write_meta(key, Meta(fill, size, "filling", local))
                    ready.set_result(progress)
                    await self.registry.uploads.finish(
                        key.stored, upload, key.digest, relay.tee(chunks), new=True
                    )
                finally:
                    relay.close()
            progress.end(None)
            self.spool.remove(key)
        except BaseException as exc:
            if progress is not None:
                progress.end(f"{type(exc).__name__}: {exc}")
            self.spool.write_meta(key, Meta(fill, None, "failed"))
            self.spool.remove(key, meta=False)
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("fill of %s in %s failed: %s", key.digest, key.stored, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._forget(key, ready)
            await lock.__aexit__(None, None, None)

    def _forget(self, key: Key, ready: Ready) -> None:
        if self.running.get(key) is ready:
            del self.running[key]

    async def close(self, grace: float) -> None:
        """At shutdown: let running fills finish for up to ``grace`` seconds, then stop the rest
        (a stopped fill leaves nothing cached; its lock and spool go with it)."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass(slots=True)
class _Relay:
    """The upstream's chunks on their way into the upload session: each handed to this process's
    readers at once (``Progress``), and appended to the spool (``fd``) for the other processes'
    readers: the first chunk at once (their first byte waits for no more), then in batches of
    ``SPOOL_BATCH``, each written in a worker thread while the next one arrives. Without a spool
    (``fd`` -1: the progress's ``source``, the upload's own file, holds the bytes) it only notes,
    every ``SPOOL_BATCH``, how much of that file is written, so the window can let go of it."""

    fd: int
    progress: Progress
    pending: asyncio.Future[None] | None = None
    batch: list[bytes] = field(default_factory=list)
    batched: int = 0
    written: int = 0

    async def tee(self, chunks: Chunks) -> AsyncIterator[bytes]:
        progress = self.progress
        source = progress.source
        async for chunk in chunks:
            progress.add(chunk)
            self.batched += len(chunk)
            if source is not None:
                if self.batched >= SPOOL_BATCH:
                    self.batched = 0
                    progress.spooled_to(_written(source))
            else:
                self.batch.append(chunk)
                if self.batched >= SPOOL_BATCH or not self.written:
                    await self._flush()
            yield chunk
        await self._flush()
        await self._settle()

    async def _flush(self) -> None:
        if not self.batch:
            return
        await self._settle()
        data, self.batch, self.batched = b"".join(self.batch), [], 0
        self.written += len(data)
        offset = self.written
        self.pending = asyncio.get_running_loop().run_in_executor(None, _write_all, self.fd, data)
        self.pending.add_done_callback(
            lambda f: None if f.cancelled() or f.exception() else self.progress.spooled_to(offset)
        )

    async def _settle(self) -> None:
        """Wait for the spool write in flight, if any."""
        if self.pending is not None:
            await asyncio.shield(self.pending)  # kept until done: ``close`` must see it
            self.pending = None

    def close(self) -> None:
        """Close the spool's descriptor, once no write uses it any more (a fill that failed or
        was stopped may leave one in its thread)."""
        pending, fd = self.pending, self.fd
        if fd < 0:
            return
        if pending is None or pending.done():
            os.close(fd)
        else:
            pending.add_done_callback(lambda _: os.close(fd))


def _written(path: str) -> int:
    """How many bytes the upload's file holds (a local file: a ``stat`` on the loop, once a MiB)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:  # not created yet, or it became the blob
        return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass(frozen=True, slots=True)
class LiveSource:
    """A blob being filled by this process, as a ``BlobSource``: the bytes from memory as they
    arrive (from the spool for a reader that fell behind the window), the last one only once the
    registry holds the verified blob."""

    fills: Fills
    key: Key
    progress: Progress
    size: int
    patience: float

    async def redirect_url(self) -> str | None:
        return None

    def local_path(self) -> str | None:
        return None

    def read(self, offset: int = 0, length: int | None = None) -> Chunks:
        return self._read(offset, self.size if length is None else min(self.size, offset + length))

    async def _read(self, pos: int, end: int) -> Chunks:
        progress = self.progress
        fd = -1
        try:
            while pos < end:
                if progress.failure is not None:
                    raise FillFailed(f"the upstream fetch of {self.key.digest} failed; nothing was cached")
                stop = min(progress.received, end if progress.committed else min(end, self.size - 1))
                if pos >= stop:
                    if not await progress.changed(self.patience):
                        raise FillFailed(f"the upstream fetch of {self.key.digest} stalled")
                    continue
                data = progress.take(pos, stop)
                if data is None:  # behind the window: from the spool, or the registry once committed
                    if fd < 0:
                        try:
                            fd = os.open(progress.source or self.fills.spool.data(self.key), os.O_RDONLY)
                        except FileNotFoundError:
                            if progress.source is not None and not progress.ended:
                                # The upload's file became the blob; the commit is finishing.
                                if not await progress.changed(self.patience):
                                    raise FillFailed(
                                        f"the upstream fetch of {self.key.digest} stalled"
                                    ) from None
                                continue
                            if not progress.committed:
                                raise FillFailed(f"the spool of {self.key.digest} is gone") from None
                            registry = self.fills.registry
                            source = await registry.open_blob(self.key.stored, self.key.digest)
                            async for data in source.read(pos, end - pos):
                                yield data
                            return
                    n = min(stop - pos, READ)
                    data = await asyncio.get_running_loop().run_in_executor(None, os.pread, fd, n, pos)
                    if not data:
                        raise FillFailed(f"the spool of {self.key.digest} is short")
                pos += len(data)
                yield data
        finally:
            if fd >= 0:
                os.close(fd)


@dataclass(frozen=True, slots=True)
class SpoolSource:
    """A blob being filled, as a ``BlobSource``: the spool's bytes so far, then the rest as they
    arrive; the last byte only once the registry holds the verified blob."""

    fills: Fills
    key: Key
    fill: str
    size: int
    patience: float
    source: str  # the spool's data file, or the upload's own file

    async def redirect_url(self) -> str | None:
        return None

    def local_path(self) -> str | None:
        return None

    def read(self, offset: int = 0, length: int | None = None) -> Chunks:
        return self._read(offset, self.size if length is None else min(self.size, offset + length))

    async def _committed(self) -> bool:
        try:
            await self.fills.registry.stat_blob(self.key.stored, self.key.digest)
        except BlobUnknown:
            return False
        return True

    async def _read(self, pos: int, end: int) -> Chunks:
        spool = self.fills.spool
        try:
            fd = os.open(self.source, os.O_RDONLY)
        except FileNotFoundError:
            fd = -1  # not written yet; or finished (or failed): the registry has it, or not
        try:
            verified = False
            loop = asyncio.get_running_loop()
            idle_since = loop.time()
            while pos < end:
                limit = end if verified else min(end, self.size - 1)
                available = os.fstat(fd).st_size if fd >= 0 else 0
                if pos < min(available, limit):
                    n = min(available, limit) - pos
                    data = await asyncio.to_thread(os.pread, fd, min(n, READ), pos)
                    pos += len(data)
                    idle_since = loop.time()
                    yield data
                    continue
                if await self._committed():
                    if fd < 0 or available < self.size:  # read the rest from the registry itself
                        source = await self.fills.registry.open_blob(self.key.stored, self.key.digest)
                        async for data in source.read(pos, end - pos):
                            yield data
                        return
                    verified = True
                    continue
                meta = spool.read_meta(self.key)
                if meta is None or meta.fill != self.fill or meta.state != "filling":
                    if await self._committed():  # it committed (and cleared the spool) just now
                        continue
                    raise FillFailed(f"the upstream fetch of {self.key.digest} failed; nothing was cached")
                if fd < 0:  # the upload's file, which the fill creates after it told readers where
                    with contextlib.suppress(FileNotFoundError):
                        fd = os.open(self.source, os.O_RDONLY)
                        continue
                if loop.time() - idle_since > self.patience:
                    raise FillFailed(f"the upstream fetch of {self.key.digest} stalled")
                await asyncio.sleep(POLL)
        finally:
            if fd >= 0:
                os.close(fd)
