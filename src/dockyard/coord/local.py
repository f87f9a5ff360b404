"""The local coordinator: the processes of one machine, with nothing to install.

Everything lives in one directory, the store's ``_dockyard/`` area (which distribution ignores):

- ``locks/<name>``: flock(2) files (:mod:`dockyard.coord.flock`);
- ``sessions/<id>``: one JSON record per upload session, replaced atomically (rename);
- ``referenced/<h[:2]>/<h>``: an empty file per liveness key (``h`` is the key's SHA-256), whose
  modification time *is* the record: set explicitly to the coordinator's clock, never moved back;
- ``generations/<topic>`` and ``leases/<job>``: small files read and rewritten in place under
  flock on the file itself, so a bump or a lease decision is atomic across processes.

The clock is the host's (``time.time``), which every process of one machine shares.

**Cost model.** A push makes a handful of coordinator calls per blob (the upload's lock, a
"referenced" record, the session record's removal), so their cost is the push's. A thread round
trip costs ~75 us of CPU under load, far more than the work: the calls that touch one small file
or a few (a session record, up to ``INLINE_KEYS`` liveness records) are therefore made directly
on the event loop, like the try-locks of :mod:`dockyard.coord.flock`: metadata syscalls on a
local disk of a few microseconds each, none of which waits for another process. What can wait
(an exclusive lock, a generation or lease file under flock) or grows with the store (listing the
sessions, a collection's thousands of liveness records) runs in a small thread pool of the
coordinator's own (not the driver's: the coordinator sits below storage). Directories are made
only when a create finds them missing, not checked on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import orjson

from dockyard import smallfiles
from dockyard.coord.base import TOPIC_NAME, Clock, Part, UploadSession, check_name
from dockyard.coord.flock import FileLocks

T = TypeVar("T")
SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
INLINE_KEYS = 16  # liveness records handled on the event loop at most (more go to a thread)


def _session_to_json(session: UploadSession) -> bytes:
    return orjson.dumps(
        {
            "id": session.id,
            "repository": session.repository,
            "offset": session.offset,
            "started_at": session.started_at,
            "updated_at": session.updated_at,
            "hash_state": session.hash_state.hex() if session.hash_state is not None else None,
            "multipart_id": session.multipart_id,
            "parts": [[p.number, p.etag, p.size] for p in session.parts],
        }
    )


def _session_from_json(raw: bytes) -> UploadSession:
    doc = orjson.loads(raw)
    state = doc.get("hash_state")
    return UploadSession(
        id=doc["id"],
        repository=doc["repository"],
        offset=int(doc["offset"]),
        started_at=float(doc["started_at"]),
        updated_at=float(doc["updated_at"]),
        hash_state=bytes.fromhex(state) if state is not None else None,
        multipart_id=doc.get("multipart_id"),
        parts=tuple(Part(int(n), str(e), int(s)) for n, e, s in doc.get("parts") or []),
    )


class _LockedFile:
    """A small file read and rewritten in place under an exclusive flock on it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def update(self, change: Callable[[bytes], tuple[bytes | None, T]]) -> T:
        """``change(old) -> (new or None to leave it, result)``, atomically across processes."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            old = b""
            while chunk := os.pread(fd, 4096, len(old)):
                old += chunk
            new, result = change(old)
            if new is not None and new != old:
                os.pwrite(fd, new, 0)
                if len(new) < len(old):  # a counter only grows: usually no truncate (a syscall)
                    os.ftruncate(fd, len(new))
            return result
        finally:
            os.close(fd)  # releases the flock

    def read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH)
                return f.read()
        except FileNotFoundError:
            return b""

    def try_update(self, change: Callable[[bytes], tuple[bytes | None, T]]) -> tuple[bool, T | None]:
        """:meth:`update` if the flock is free now, without waiting: ``(done, result)``."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return False, None  # the first of its kind: made by ``update``
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False, None
            old = os.pread(fd, 64, 0)
            new, result = change(old)
            if new is not None and new != old:
                os.pwrite(fd, new, 0)
                if len(new) < len(old):  # a counter only grows: usually no truncate (a syscall)
                    os.ftruncate(fd, len(new))
            return True, result
        finally:
            os.close(fd)

    def try_read(self) -> bytes | None:
        """The content if no writer holds the flock now (None if one does)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            return os.pread(fd, 64, 0)
        finally:
            os.close(fd)


class LocalCoordinator:
    name = "local"

    def __init__(
        self, directory: str, clock: Clock = time.time, threads: int = 4, *, inline: bool = True
    ) -> None:
        """``inline`` false sends every call to the threads: the store's root is on a network
        filesystem (the filesystem driver's ``inlinemetadata`` decision), where one ``stat`` may
        wait on a server and would stall every request of the worker."""
        self.directory = os.path.abspath(directory)
        self.clock = clock
        self.inline = inline
        self._inline_keys = INLINE_KEYS if inline else 0
        self._threads = ThreadPoolExecutor(threads, "dockyard-coord")
        self._locks = FileLocks(os.path.join(self.directory, "locks"), self._run, inline=inline)
        self._sessions = os.path.join(self.directory, "sessions")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    async def _small(self, fn: Callable[..., T], *args: Any) -> T:
        """A call that touches one small file: on the loop (see the cost model), unless not inline."""
        return fn(*args) if self.inline else await self._run(fn, *args)

    async def now(self) -> float:
        return self.clock()

    def lock(
        self, name: str, *, shared: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[None]:
        return self._locks.lock(name, shared=shared, wait=wait)

    # -- sessions ------------------------------------------------------------------------------

    def _session_path(self, session_id: str) -> str:
        return f"{self._sessions}/{check_name(session_id, SESSION_ID)}"

    def _write_session(self, session: UploadSession) -> None:
        smallfiles.replace(self._session_path(session.id), _session_to_json(session))

    def _read_session(self, session_id: str) -> UploadSession | None:
        try:
            return _session_from_json(smallfiles.read(self._session_path(session_id)))
        except FileNotFoundError:
            return None

    async def create_session(self, session_id: str, repository: str) -> UploadSession:
        now = self.clock()
        session = UploadSession(session_id, repository, 0, now, now)
        await self._small(self._write_session, session)
        return session

    async def get_session(self, session_id: str) -> UploadSession | None:
        return await self._small(self._read_session, session_id)

    def _update_session(self, session_id: str, **changes: Any) -> UploadSession | None:
        old = self._read_session(session_id)
        if old is None:
            return None
        new = UploadSession(
            old.id, old.repository, started_at=old.started_at, updated_at=self.clock(), **changes
        )
        self._write_session(new)
        return new

    async def update_session(
        self,
        session_id: str,
        *,
        offset: int,
        hash_state: bytes | None = None,
        multipart_id: str | None = None,
        parts: Sequence[Part] = (),
    ) -> UploadSession | None:
        def update() -> UploadSession | None:
            return self._update_session(
                session_id, offset=offset, hash_state=hash_state, multipart_id=multipart_id, parts=(*parts,)
            )

        return await self._small(update)

    def _delete_session(self, session_id: str) -> bool:
        try:
            os.unlink(self._session_path(session_id))
        except FileNotFoundError:
            return False
        return True

    async def delete_session(self, session_id: str) -> bool:
        return await self._small(self._delete_session, session_id)

    def _idle_sessions(self, cutoff: float) -> list[UploadSession]:
        directory = self._sessions
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if ".tmp-" in name:
                continue
            session = self._read_session(name)
            if session is not None and session.updated_at < cutoff:
                out.append(session)
        return out

    async def idle_sessions(self, idle_seconds: float) -> list[UploadSession]:
        return await self._run(self._idle_sessions, self.clock() - idle_seconds)

    # -- liveness ------------------------------------------------------------------------------

    def _reference_path(self, key: str) -> str:
        h = hashlib.sha256(key.encode()).hexdigest()
        return os.path.join(self.directory, "referenced", h[:2], h)

    def _referenced(self, keys: Sequence[str], now: float) -> None:
        for key in keys:
            path = self._reference_path(key)
            try:
                if os.stat(path).st_mtime >= now:
                    continue
            except FileNotFoundError:
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
                except FileNotFoundError:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
            os.utime(path, (now, now))

    async def referenced(self, keys: Sequence[str]) -> None:
        if len(keys) > self._inline_keys:
            await self._run(self._referenced, keys, self.clock())
        elif keys:
            self._referenced(keys, self.clock())

    def _last_referenced(self, keys: Sequence[str]) -> list[float | None]:
        out: list[float | None] = []
        for key in keys:
            try:
                out.append(os.stat(self._reference_path(key)).st_mtime)
            except FileNotFoundError:
                out.append(None)
        return out

    async def last_referenced(self, keys: Sequence[str]) -> list[float | None]:
        if len(keys) > self._inline_keys:
            return await self._run(self._last_referenced, keys)
        return self._last_referenced(keys)

    def _forget(self, keys: Sequence[str]) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._reference_path(key))

    async def forget(self, keys: Sequence[str]) -> None:
        if len(keys) > self._inline_keys:
            await self._run(self._forget, keys)
        else:
            self._forget(keys)

    # -- generations ---------------------------------------------------------------------------

    def _generation_file(self, topic: str) -> _LockedFile:
        return _LockedFile(os.path.join(self.directory, "generations", check_name(topic, TOPIC_NAME)))

    async def bump(self, topic: str) -> int:
        def change(old: bytes) -> tuple[bytes, int]:
            value = int(old or b"0") + 1
            return str(value).encode(), value

        # A counter file is locked for a few microseconds at a time: try on the loop, wait in a
        # thread only if another process holds it right now.
        file = self._generation_file(topic)
        if self.inline:
            done, value = file.try_update(change)
            if done and value is not None:
                return value
        return await self._run(file.update, change)

    async def generation(self, topic: str) -> int:
        file = self._generation_file(topic)
        raw = file.try_read() if self.inline else None
        if raw is None:
            raw = await self._run(file.read)
        return int(raw or b"0")

    # -- leases --------------------------------------------------------------------------------

    def _lease_file(self, job: str) -> _LockedFile:
        return _LockedFile(os.path.join(self.directory, "leases", check_name(job)))

    async def acquire_lease(self, job: str, holder: str, ttl: float) -> bool:
        now = self.clock()

        def change(old: bytes) -> tuple[bytes | None, bool]:
            current = json.loads(old) if old else None
            if current is not None and current["holder"] != holder and current["expires"] > now:
                return None, False
            return json.dumps({"holder": holder, "expires": now + ttl}).encode(), True

        return await self._run(self._lease_file(job).update, change)

    async def release_lease(self, job: str, holder: str) -> None:
        def change(old: bytes) -> tuple[bytes | None, None]:
            current = json.loads(old) if old else None
            if current is not None and current["holder"] == holder:
                return json.dumps({"holder": "", "expires": 0.0}).encode(), None
            return None, None

        await self._run(self._lease_file(job).update, change)

    async def lease_holder(self, job: str) -> str | None:
        raw = await self._run(self._lease_file(job).read)
        current = json.loads(raw) if raw else None
        if current is None or not current["holder"] or current["expires"] <= self.clock():
            return None
        holder: str = current["holder"]
        return holder

    async def close(self) -> None:
        self._locks.close()
        self._threads.shutdown(wait=False)
