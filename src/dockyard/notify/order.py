"""The lock that keeps a repository's events in the order of its changes (``events.order``).

One holder per repository at a time, across processes and replicas: first among this process's
tasks (an asyncio lock per repository, so a burst of pushes to one repository queues here, not in
the coordinator), then across processes by the coordinator's lock, *tried* and retried with a
short backoff on the event loop rather than waited for. A waited-for lock would park a thread
(flock) or open a connection (PostgreSQL) per waiter, and the flock coordinator's few threads,
all parked behind holders that need one of them to finish their change, would deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

from dockyard.coord.base import Coordinator
from dockyard.errors import LockBusy

FIRST_RETRY, LAST_RETRY = 0.001, 0.01  # seconds between tries of a busy repository's lock


def lock_name(repository: str) -> str:
    """The coordinator lock of a repository's changes (any name maps to a valid lock name)."""
    return "events-" + hashlib.sha256(repository.encode()).hexdigest()[:40]


class RepositoryOrder:
    """The per-repository lock, released after ``flushed()`` says the events queued so far are
    written (durable or failed: a failure is the request's own error to answer)."""

    def __init__(self, coordinator: Coordinator, flushed: Callable[[], Awaitable[None]]) -> None:
        self.coordinator = coordinator
        self.flushed = flushed
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}  # repository -> (lock, users)

    @contextlib.asynccontextmanager
    async def change(self, repository: str) -> AsyncIterator[None]:
        local, users = self._local.get(repository) or (asyncio.Lock(), 0)
        self._local[repository] = (local, users + 1)
        try:
            async with local:
                held = await self._acquire(lock_name(repository))
                try:
                    yield
                    await self.flushed()
                finally:
                    await held.__aexit__(None, None, None)
        finally:
            local, users = self._local[repository]
            if users == 1:
                del self._local[repository]
            else:
                self._local[repository] = (local, users - 1)

    async def _acquire(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        delay = FIRST_RETRY
        while True:
            held = self.coordinator.lock(name, wait=False)
            try:
                await held.__aenter__()
            except LockBusy:
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY)
                continue
            return held
