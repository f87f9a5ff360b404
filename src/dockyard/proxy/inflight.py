"""Single-flight blob fills: one upstream fetch per missing blob, however many ask for it at once.

The first request for a blob the cache lacks starts a *fill*: a task, detached from the request,
that holds the coordinator lock ``proxy-fill-<key>`` (so one process of one machine, or with a
database one replica, fetches), streams the upstream's bytes into an upload session of the
registry (digest verified before anything is committed: wrong bytes or a break leave nothing),
and at the same time into a *spool* file on local disk with a small ``.meta`` beside it (size,
fill id, state).

Every requester, the first one included, is a reader of the spool: it sends the bytes received so
far and waits for more, and sends the blob's last byte only once the registry holds the verified
blob, so a client never receives a whole body with the wrong bytes (an upstream that lied or broke
off ends every reader's response early: the client sees a short body and retries). Requesters on
another replica (no spool there) wait for the commit and then read the registry; the longest wait
is the whole fill, which each upstream read's timeout bounds per chunk. A client that disconnects
does not stop the fill (it belongs to no request): the bytes are cached for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from dockyard.errors import BlobUnknown, LockBusy
from dockyard.oci.digest import Digest
from dockyard.storage.model import BlobSource, Chunks
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.proxy")

POLL = 0.01  # seconds between looks at a fill in progress (a spool write wakes no one)
SPOOL_FLUSH = 256 << 10  # bytes gathered before a spool write: readers lag the upstream by this
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
        tmp = f"{self.meta_path(key)}.{uuid.uuid4().hex}"
        with open(tmp, "w") as f:
            json.dump({"fill": meta.fill, "size": meta.size, "state": meta.state}, f)
        os.replace(tmp, self.meta_path(key))

    def read_meta(self, key: Key) -> Meta | None:
        try:
            with open(self.meta_path(key)) as f:
                raw = json.load(f)
            return Meta(str(raw["fill"]), raw["size"], str(raw["state"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remove(self, key: Key, *, meta: bool = True) -> None:
        for path in (self.data(key), self.meta_path(key)) if meta else (self.data(key),):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class Fills:
    """The fills of one worker process; ``fetches`` counts the upstream fetches it began."""

    def __init__(self, registry: Registry, spool: Spool) -> None:
        self.registry = registry
        self.spool = spool
        self.tasks: set[asyncio.Task[None]] = set()
        self.fetches = 0

    async def open(self, stored: str, digest: Digest, fetch: Fetch, patience: float) -> BlobSource:
        """The blob, from the registry when it holds it, else from a fill (this request's or the
        one in progress). ``patience`` is how long a reader waits for bytes that do not come."""
        key = Key(stored, digest)
        while True:
            with contextlib.suppress(BlobUnknown):
                return await self.registry.open_blob(stored, digest)
            ready: asyncio.Future[tuple[str, int | None]] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._fill(key, fetch, ready))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            try:
                fill, size = await asyncio.shield(ready)
            except LockBusy:
                source = await self._follow(key, patience)
                if source is not None:
                    return source
                continue
            if size is None:  # no Content-Length: readers cannot be told a size; wait for it
                await asyncio.shield(task)
                return await self.registry.open_blob(stored, digest)
            return SpoolSource(self, key, fill, size, patience)

    async def _follow(self, key: Key, patience: float) -> BlobSource | None:
        """A reader of the fill another request started, or None to try again (it ended, or it
        runs elsewhere and this machine has no spool of it: then wait for its commit)."""
        meta = self.spool.read_meta(key)
        if meta is not None and meta.state == "filling" and meta.size is not None:
            return SpoolSource(self, key, meta.fill, meta.size, patience)
        await asyncio.sleep(POLL * (1 if meta is not None else 5))
        return None

    async def _fill(self, key: Key, fetch: Fetch, ready: asyncio.Future[tuple[str, int | None]]) -> None:
        lock = self.registry.coordinator.lock(key.lock, wait=False)
        try:
            await lock.__aenter__()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        fill = uuid.uuid4().hex
        try:
            with contextlib.suppress(BlobUnknown):  # committed just before the lock was free
                await self.registry.stat_blob(key.stored, key.digest)
                ready.set_result((fill, None))
                return
            self.fetches += 1
            async with fetch() as (size, chunks):
                fd = os.open(self.spool.data(key), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    self.spool.write_meta(key, Meta(fill, size, "filling"))
                    ready.set_result((fill, size))
                    # The first bytes go to the spool as soon as they arrive, before the upload
                    # session is set up: the readers' first byte waits for the upstream only.
                    upstream = aiter(chunks)
                    first = await anext(upstream, b"")
                    await asyncio.to_thread(_write_all, fd, first)
                    body = _prepend(first, _tee(upstream, fd))
                    await self.registry.uploads.monolithic(key.stored, key.digest, body)
                finally:
                    os.close(fd)
            self.spool.remove(key)
        except BaseException as exc:
            self.spool.write_meta(key, Meta(fill, None, "failed"))
            self.spool.remove(key, meta=False)
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("fill of %s in %s failed: %s", key.digest, key.stored, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            await lock.__aexit__(None, None, None)

    async def close(self, grace: float) -> None:
        """At shutdown: let running fills finish for up to ``grace`` seconds, then stop the rest
        (a stopped fill leaves nothing cached; its lock and spool go with it)."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first`` (in the spool already), then ``rest``."""
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _tee(chunks: Chunks, fd: int) -> AsyncIterator[bytes]:
    """The upstream's chunks, unchanged, also appended to the spool: the first at once (the
    readers' first byte waits for no more), then in pieces of SPOOL_FLUSH."""
    pending: list[bytes] = []
    buffered = 0
    first = True
    async for chunk in chunks:
        pending.append(chunk)
        buffered += len(chunk)
        if buffered >= SPOOL_FLUSH or first:
            first = False
            await asyncio.to_thread(_write_all, fd, b"".join(pending))
            pending, buffered = [], 0
        yield chunk
    if pending:
        await asyncio.to_thread(_write_all, fd, b"".join(pending))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass(frozen=True, slots=True)
class SpoolSource:
    """A blob being filled, as a ``BlobSource``: the spool's bytes so far, then the rest as they
    arrive; the last byte only once the registry holds the verified blob."""

    fills: Fills
    key: Key
    fill: str
    size: int

    patience: float

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
            fd = os.open(spool.data(self.key), os.O_RDONLY)
        except FileNotFoundError:
            fd = -1  # finished (or failed) before this reader came: the registry has it, or not
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
                if fd < 0 or meta is None or meta.fill != self.fill or meta.state != "filling":
                    if await self._committed():  # it committed (and cleared the spool) just now
                        continue
                    raise FillFailed(f"the upstream fetch of {self.key.digest} failed; nothing was cached")
                if loop.time() - idle_since > self.patience:
                    raise FillFailed(f"the upstream fetch of {self.key.digest} stalled")
                await asyncio.sleep(POLL)
        finally:
            if fd >= 0:
                os.close(fd)
