"""Locks shared by every process of one machine: flock(2) on files in one directory
(``_dockyard/locks/`` of the store).

Exclusive holders open their own file and wait in a thread (a try-lock never waits, so it is
made on the event loop). Shared holders in one process share one open file and a count: the
first takes ``LOCK_SH`` with a non-blocking call (a syscall that never waits, so it is made on
the event loop; only if an exclusive holder is in the way does it wait in a thread), the last
releases it. A push then pays no thread round trip for the lock. While an exclusive holder of
this process waits, new shared holders of this process wait too, so a collection is not starved
by a steady stream of pushes.

An exclusive holder removes the lock file when it lets go, so one-off names (a lock per upload)
leave nothing behind. That is safe because every holder checks, once it has the lock, that the
file it locked is still the one at the path (same inode), and starts over if not: a lock taken on
a file already unlinked excludes nobody, and is never relied on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from dockyard.coord.base import check_name
from dockyard.errors import LockBusy

Runner = Callable[..., Awaitable[Any]]
T = TypeVar("T")


def _current(fd: int, path: str) -> bool:
    """The file locked through ``fd`` is still the one at ``path``."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


class _Handoff:
    """What a thread that waits for a lock hands back, unless its waiter was cancelled meanwhile:
    then whoever comes second (the thread, or the cancelled waiter) lets the lock go."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.abandoned = False
        self.fd: int | None = None
        self.wake = threading.Event()

    def abandon(self) -> int | None:
        """Mark the waiter gone, wake its thread, and return a lock it was granted meanwhile."""
        with self.mutex:
            self.abandoned = True
            self.wake.set()
            return self.fd


class FileLocks:
    def __init__(self, directory: str, run: Runner, *, inline: bool = True) -> None:
        self.directory = directory
        self.run = run
        self.inline = inline  # try-locks on the loop (a local disk); else in ``run`` too
        self._shared_fd: dict[str, int] = {}
        self._shared_count: dict[str, int] = {}
        self._exclusive_waiting: dict[str, int] = {}
        self._shared_gate: dict[str, asyncio.Lock] = {}

    async def _small(self, fn: Callable[..., T], *args: Any) -> T:
        """A non-blocking call on the lock files: on the loop, unless not ``inline``."""
        return fn(*args) if self.inline else await self.run(fn, *args)

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _open(self, name: str) -> int:
        # The directory exists but for the first lock ever: try first (one syscall), rather than
        # pay ``makedirs``'s three on every lock (a lock is taken per upload request).
        try:
            return os.open(self._path(name), os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            os.makedirs(self.directory, exist_ok=True)
            return os.open(self._path(name), os.O_RDWR | os.O_CREAT, 0o644)

    def _exclusive(self, name: str, wait: bool) -> int:
        while True:
            fd = self._open(name)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise LockBusy(name) from None
            except BaseException:
                os.close(fd)
                raise
            if _current(fd, self._path(name)):
                return fd
            os.close(fd)  # the previous holder removed it: lock the new one

    def _wait_exclusive(self, name: str, handoff: _Handoff) -> None:
        """Try the lock until it is granted or the waiter is cancelled.

        A thread blocked in ``flock(LOCK_EX)`` cannot be called back: if its waiter were
        cancelled, it would still take the lock the moment the holder let go and hold it until it
        noticed, so a try-lock by anybody else in that window would fail for no holder at all
        (seen as a flaky coordinator-suite test under load). Each try here is non-blocking and
        made under the handoff's mutex, so once a waiter is abandoned no try is made: a
        cancelled waiter never holds the lock. Tries back off from 2 ms to 20 ms; the waits this
        serves (a collection, a retention run) are long, so the polling is cheap."""
        delay = 0.002
        while True:
            with handoff.mutex:
                if handoff.abandoned:
                    return
                with contextlib.suppress(LockBusy):
                    handoff.fd = self._exclusive(name, False)
                    return
            handoff.wake.wait(delay)
            delay = min(delay * 2, 0.02)

    async def _exclusive_waited(self, name: str) -> int:
        handoff = _Handoff()
        try:
            await self.run(self._wait_exclusive, name, handoff)
        except BaseException:
            fd = handoff.abandon()
            if fd is not None:  # granted as the waiter was cancelled: let it go
                self._release_exclusive(name, fd)
            raise
        if handoff.fd is None:  # pragma: no cover - the thread returns empty only once abandoned
            raise LockBusy(name)
        return handoff.fd

    def _wait_shared(self, name: str, fd: int, handoff: _Handoff, loop: asyncio.AbstractEventLoop) -> None:
        fcntl.flock(fd, fcntl.LOCK_SH)
        with handoff.mutex:
            if not handoff.abandoned:
                handoff.fd = fd
                return
        loop.call_soon_threadsafe(self._unlock_if_unused, name, fd)

    def _unlock_if_unused(self, name: str, fd: int) -> None:
        if not self._shared_count.get(name) and self._shared_fd.get(name) == fd:
            fcntl.flock(fd, fcntl.LOCK_UN)

    async def _shared_waited(self, name: str, fd: int) -> None:
        handoff = _Handoff()
        try:
            await self.run(self._wait_shared, name, fd, handoff, asyncio.get_running_loop())
        except BaseException:
            with handoff.mutex:
                handoff.abandoned = True
                granted = handoff.fd is not None
            if granted:
                self._unlock_if_unused(name, fd)
            raise

    def _release_exclusive(self, name: str, fd: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))
        os.close(fd)

    async def _acquire_shared(self, name: str, wait: bool) -> None:
        while self._exclusive_waiting.get(name):
            if not wait:
                raise LockBusy(name)
            await asyncio.sleep(0.001)
        if self._shared_count.get(name, 0) == 0:
            # One task at a time takes this process's shared flock (it may close a stale file).
            gate = self._shared_gate.setdefault(name, asyncio.Lock())
            if not wait and gate.locked():
                raise LockBusy(name)
            async with gate:
                if self._shared_count.get(name, 0) == 0:
                    await self._flock_shared(name, wait)
        self._shared_count[name] = self._shared_count.get(name, 0) + 1

    async def _flock_shared(self, name: str, wait: bool) -> None:
        while True:
            fd = self._shared_fd.get(name)
            if fd is None:
                fd = self._shared_fd[name] = await self.run(self._open, name)
            try:
                await self._small(fcntl.flock, fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise LockBusy(name) from None
                await self._shared_waited(name, fd)
            if await self._small(_current, fd, self._path(name)):
                return
            # An exclusive holder removed the file since this process opened it: start over.
            del self._shared_fd[name]
            os.close(fd)

    async def _release_shared(self, name: str) -> None:
        self._shared_count[name] -= 1
        if self._shared_count[name] != 0:
            return
        if self.inline:
            fcntl.flock(self._shared_fd[name], fcntl.LOCK_UN)
            return
        # In a thread: under the gate, so a task taking the lock meanwhile flocks after the unlock.
        async with self._shared_gate.setdefault(name, asyncio.Lock()):
            if self._shared_count.get(name, 0) == 0:
                await self.run(fcntl.flock, self._shared_fd[name], fcntl.LOCK_UN)

    @contextlib.asynccontextmanager
    async def lock(self, name: str, *, shared: bool = False, wait: bool = True) -> AsyncIterator[None]:
        check_name(name)
        if shared:
            await self._acquire_shared(name, wait)
            try:
                yield
            finally:
                if self.inline:  # never suspends: nothing to shield (and no task per release)
                    await self._release_shared(name)
                else:  # a cancelled holder still lets go
                    await asyncio.shield(self._release_shared(name))
            return
        self._exclusive_waiting[name] = self._exclusive_waiting.get(name, 0) + 1
        try:
            # A try-lock never blocks: open and flock(LOCK_NB) on the loop, no thread round trip.
            if wait:
                fd = await self._exclusive_waited(name)
            else:
                fd = await self._small(self._exclusive, name, False)
        finally:
            self._exclusive_waiting[name] -= 1
            if not self._exclusive_waiting[name]:
                del self._exclusive_waiting[name]
        try:
            yield
        finally:
            if wait or not self.inline:
                await asyncio.shield(self.run(self._release_exclusive, name, fd))
            else:
                self._release_exclusive(name, fd)

    def close(self) -> None:
        for fd in self._shared_fd.values():
            os.close(fd)
        self._shared_fd.clear()
