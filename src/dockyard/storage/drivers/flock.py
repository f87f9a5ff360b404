"""Locks shared by every process serving one storage root: flock(2) on files under
``_dockyard/locks/``.

Exclusive holders open their own file and wait in a thread. Shared holders in one process share
one open file and a count: the first takes ``LOCK_SH`` with a non-blocking call (a syscall that
never waits, so it is made on the event loop; only if an exclusive holder is in the way does it
wait in a thread), the last releases it. A push then pays no thread round trip for the lock.
While an exclusive holder of this process waits, new shared holders of this process wait too,
so a collection is not starved by a steady stream of pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dockyard.errors import InvalidPath, LockBusy

Runner = Callable[..., Awaitable[Any]]


class FileLocks:
    def __init__(self, directory: str, run: Runner) -> None:
        self.directory = directory
        self.run = run
        self._shared_fd: dict[str, int] = {}
        self._shared_count: dict[str, int] = {}
        self._exclusive_waiting: dict[str, int] = {}

    def _open(self, name: str) -> int:
        os.makedirs(self.directory, exist_ok=True)
        return os.open(os.path.join(self.directory, name), os.O_RDWR | os.O_CREAT, 0o644)

    def _exclusive(self, name: str, wait: bool) -> int:
        fd = self._open(name)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise LockBusy(name) from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def _acquire_shared(self, name: str, wait: bool) -> None:
        while self._exclusive_waiting.get(name):
            if not wait:
                raise LockBusy(name)
            await asyncio.sleep(0.001)
        if self._shared_count.get(name, 0) == 0:
            fd = self._shared_fd.get(name)
            if fd is None:
                fd = await self.run(self._open, name)
                fd = self._shared_fd.setdefault(name, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise LockBusy(name) from None
                await self.run(fcntl.flock, fd, fcntl.LOCK_SH)
        self._shared_count[name] = self._shared_count.get(name, 0) + 1

    def _release_shared(self, name: str) -> None:
        self._shared_count[name] -= 1
        if self._shared_count[name] == 0:
            fcntl.flock(self._shared_fd[name], fcntl.LOCK_UN)

    @contextlib.asynccontextmanager
    async def lock(self, name: str, *, shared: bool = False, wait: bool = True) -> AsyncIterator[None]:
        if not re.fullmatch(r"[a-z0-9-]+", name):
            raise InvalidPath(name)
        if shared:
            await self._acquire_shared(name, wait)
            try:
                yield
            finally:
                self._release_shared(name)
            return
        self._exclusive_waiting[name] = self._exclusive_waiting.get(name, 0) + 1
        try:
            fd = await self.run(self._exclusive, name, wait)
        finally:
            self._exclusive_waiting[name] -= 1
        try:
            yield
        finally:
            await self.run(os.close, fd)
