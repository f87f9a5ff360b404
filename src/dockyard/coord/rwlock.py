"""A readers/writer lock for the tasks of one event loop, first come first served.

Waiters queue in order; a shared request also waits while an exclusive one is queued ahead of
it, so a steady stream of readers cannot starve a writer. Release hands the lock on
synchronously (waiters' futures are resolved in ``release``), so no task is spawned and
nothing is left for the garbage collector to cancel. A waiter cancelled after the lock was
handed to it passes it on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from dockyard.errors import LockBusy


class RWLock:
    def __init__(self, name: str = "lock") -> None:
        self.name = name
        self.readers = 0
        self.writer = False
        self._queue: deque[tuple[bool, asyncio.Future[None]]] = deque()

    @property
    def idle(self) -> bool:
        return not self.writer and self.readers == 0 and not self._queue

    def _grantable(self, shared: bool) -> bool:
        return not self.writer and (shared or self.readers == 0)

    def _take(self, shared: bool) -> None:
        if shared:
            self.readers += 1
        else:
            self.writer = True

    async def acquire(self, shared: bool, wait: bool = True) -> None:
        if not self._queue and self._grantable(shared):
            self._take(shared)
            return
        if not wait:
            raise LockBusy(self.name)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (shared, future)
        self._queue.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(shared)  # granted just before the cancellation: hand it on
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it already
                    self._queue.remove(entry)
                self._wake()  # a writer that left the queue may unblock readers behind it
            raise

    def release(self, shared: bool) -> None:
        if shared:
            self.readers -= 1
        else:
            self.writer = False
        self._wake()

    def _wake(self) -> None:
        while self._queue:
            shared, future = self._queue[0]
            if future.done():  # cancelled, removal pending in its own task
                self._queue.popleft()
                continue
            if not self._grantable(shared):
                return
            self._queue.popleft()
            self._take(shared)
            future.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self, shared: bool = False, wait: bool = True) -> AsyncIterator[None]:
        await self.acquire(shared, wait)
        try:
            yield
        finally:
            self.release(shared)


class RWLocks:
    """Named :class:`RWLock` s, dropped when idle so the table does not grow with one-off names."""

    def __init__(self) -> None:
        self._locks: dict[str, RWLock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str, *, shared: bool = False, wait: bool = True) -> AsyncIterator[None]:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = RWLock(name)
        try:
            await lock.acquire(shared, wait)
        except BaseException:
            self._drop_if_idle(name, lock)
            raise
        try:
            yield
        finally:
            lock.release(shared)
            self._drop_if_idle(name, lock)

    def _drop_if_idle(self, name: str, lock: RWLock) -> None:
        if lock.idle and self._locks.get(name) is lock:
            del self._locks[name]
