"""The in-memory coordinator: one process, for tests and the in-memory storage driver."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from dockyard.coord.base import TOPIC_NAME, Clock, Part, UploadSession, check_name
from dockyard.coord.rwlock import RWLocks


class MemoryCoordinator:
    name = "memory"

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.instance = uuid.uuid4().hex
        self._locks = RWLocks()
        self._sessions: dict[str, UploadSession] = {}
        self._references: dict[str, float] = {}
        self._generations: dict[str, int] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    async def now(self) -> float:
        return self.clock()

    def lock(
        self, name: str, *, shared: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(check_name(name), shared=shared, wait=wait)

    async def create_session(self, session_id: str, repository: str) -> UploadSession:
        now = self.clock()
        session = UploadSession(session_id, repository, 0, now, now)
        self._sessions[session_id] = session
        return session

    async def get_session(self, session_id: str) -> UploadSession | None:
        return self._sessions.get(session_id)

    async def update_session(
        self,
        session_id: str,
        *,
        offset: int,
        hash_state: bytes | None = None,
        multipart_id: str | None = None,
        parts: Sequence[Part] = (),
    ) -> UploadSession | None:
        old = self._sessions.get(session_id)
        if old is None:
            return None
        new = dataclasses.replace(
            old,
            offset=offset,
            updated_at=self.clock(),
            hash_state=hash_state,
            multipart_id=multipart_id,
            parts=tuple(parts),
        )
        self._sessions[session_id] = new
        return new

    async def delete_session(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def idle_sessions(self, idle_seconds: float) -> list[UploadSession]:
        cutoff = self.clock() - idle_seconds
        return [s for s in self._sessions.values() if s.updated_at < cutoff]

    async def referenced(self, keys: Sequence[str]) -> None:
        now = self.clock()
        for key in keys:
            self._references[key] = max(now, self._references.get(key, now))

    async def last_referenced(self, keys: Sequence[str]) -> list[float | None]:
        return [self._references.get(key) for key in keys]

    async def forget(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._references.pop(key, None)

    async def bump(self, topic: str) -> int:
        value = self._generations.get(check_name(topic, TOPIC_NAME), 0) + 1
        self._generations[topic] = value
        return value

    async def generation(self, topic: str) -> int:
        return self._generations.get(check_name(topic, TOPIC_NAME), 0)

    async def acquire_lease(self, job: str, holder: str, ttl: float) -> bool:
        now = self.clock()
        current = self._leases.get(check_name(job))
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._leases[job] = (holder, now + ttl)
        return True

    async def release_lease(self, job: str, holder: str) -> None:
        current = self._leases.get(check_name(job))
        if current is not None and current[0] == holder:
            del self._leases[job]

    async def lease_holder(self, job: str) -> str | None:
        current = self._leases.get(check_name(job))
        return current[0] if current is not None and current[1] > self.clock() else None

    async def close(self) -> None:
        return None
