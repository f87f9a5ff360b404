"""A coordinator wrapper that stops chosen lock calls at barriers, to force interleavings.

Races between a collection and a push used to be tested by timing jitter, which finds the
dangerous interleaving only by luck. Here a test names the point instead::

    stepper = SteppingCoordinator(coordinator)
    sweep = stepper.pause("gc", shared=False, at="inside", occurrence=2)  # the first sweep batch
    task = asyncio.ensure_future(collect(registry, options))
    await sweep.reached()        # the collector holds the batch lock and waits for us
    ...                          # start the push; check it waits
    sweep.release()

``at="before"`` stops a caller before it asks for the lock, ``at="inside"`` once it holds it.
Occurrences count the calls for that name and mode made after ``pause`` was called.
:attr:`SteppingCoordinator.acquired` counts acquisitions, so a test can check that a caller is
still waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal

from dockyard.coord.base import Coordinator, Part, UploadSession

Point = Literal["before", "inside"]


@dataclass(slots=True)
class Pause:
    name: str
    shared: bool
    at: Point
    call: int  # which call (by the wrapper's running count) stops
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def reached(self) -> None:
        """Wait until the chosen call is stopped here (the bound only guards a broken test)."""
        async with asyncio.timeout(30):
            await self.arrived.wait()

    def release(self) -> None:
        self.go.set()


class SteppingCoordinator:
    def __init__(self, inner: Coordinator) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: Counter[tuple[str, bool]] = Counter()
        self.acquired: Counter[tuple[str, bool]] = Counter()
        self._pauses: list[Pause] = []

    def pause(self, name: str, *, shared: bool, at: Point, occurrence: int = 1) -> Pause:
        point = Pause(name, shared, at, self.calls[(name, shared)] + occurrence)
        self._pauses.append(point)
        return point

    async def _stop(self, name: str, shared: bool, at: Point, call: int) -> None:
        for point in self._pauses:
            if (point.name, point.shared, point.at, point.call) == (name, shared, at, call):
                point.arrived.set()
                await point.go.wait()

    @contextlib.asynccontextmanager
    async def _lock(self, name: str, shared: bool, wait: bool) -> AsyncIterator[None]:
        self.calls[(name, shared)] += 1
        call = self.calls[(name, shared)]
        await self._stop(name, shared, "before", call)
        async with self.inner.lock(name, shared=shared, wait=wait):
            self.acquired[(name, shared)] += 1
            await self._stop(name, shared, "inside", call)
            yield

    def lock(
        self, name: str, *, shared: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[None]:
        return self._lock(name, shared, wait)

    # -- everything else passes through ------------------------------------------------------

    async def now(self) -> float:
        return await self.inner.now()

    async def create_session(self, session_id: str, repository: str) -> UploadSession:
        return await self.inner.create_session(session_id, repository)

    async def get_session(self, session_id: str) -> UploadSession | None:
        return await self.inner.get_session(session_id)

    async def update_session(
        self,
        session_id: str,
        *,
        offset: int,
        hash_state: bytes | None = None,
        multipart_id: str | None = None,
        parts: Sequence[Part] = (),
    ) -> UploadSession | None:
        return await self.inner.update_session(
            session_id, offset=offset, hash_state=hash_state, multipart_id=multipart_id, parts=parts
        )

    async def delete_session(self, session_id: str) -> bool:
        return await self.inner.delete_session(session_id)

    async def idle_sessions(self, idle_seconds: float) -> list[UploadSession]:
        return await self.inner.idle_sessions(idle_seconds)

    async def referenced(self, keys: Sequence[str]) -> None:
        await self.inner.referenced(keys)

    async def last_referenced(self, keys: Sequence[str]) -> list[float | None]:
        return await self.inner.last_referenced(keys)

    async def forget(self, keys: Sequence[str]) -> None:
        await self.inner.forget(keys)

    async def bump(self, topic: str) -> int:
        return await self.inner.bump(topic)

    async def generation(self, topic: str) -> int:
        return await self.inner.generation(topic)

    async def acquire_lease(self, job: str, holder: str, ttl: float) -> bool:
        return await self.inner.acquire_lease(job, holder, ttl)

    async def release_lease(self, job: str, holder: str) -> None:
        await self.inner.release_lease(job, holder)

    async def lease_holder(self, job: str) -> str | None:
        return await self.inner.lease_holder(job)

    async def close(self) -> None:
        await self.inner.close()
