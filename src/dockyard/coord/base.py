"""The coordinator protocol: what the processes (and replicas) serving one store agree on.

Storage holds bytes; the coordinator holds everything that is about *who is doing what now*:

- **locks**, shared or exclusive, waited for or tried (``LockBusy`` when busy);
- **upload sessions**: offset, last activity, a serialised hash state, and room for an object
  store's multipart id and part list, so a chunk may land on any process or replica;
- **GC liveness**: "referenced at" records written when a push makes content reachable, read by
  the garbage collector, all stamped by one clock, the coordinator's :meth:`Coordinator.now`;
- **generations**: a counter per topic, bumped on change, for cache invalidation;
- **leases**: single-runner election for maintenance jobs, with expiry for a holder that died.

Three implementations pass the shared suite (``dockyard.testing.coord_suite``): ``memory``
(one process, for tests and the in-memory driver), ``local`` (flock and small files under the
store's ``_dockyard/`` area: the processes of one machine, the default) and ``postgres``
(advisory locks and rows: many replicas).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from dockyard.errors import InvalidPath

Clock = Callable[[], float]
"""Seconds since the epoch. Tests inject one they can step; production uses the default."""

LOCK_NAME = re.compile(r"[a-z0-9-]{1,100}")
TOPIC_NAME = re.compile(r"[a-z0-9._-]{1,100}")


def check_name(name: str, pattern: re.Pattern[str] = LOCK_NAME) -> str:
    """Lock, job and topic names are short and plain, so every backend can use them as file names."""
    if not pattern.fullmatch(name):
        raise InvalidPath(name)
    return name


@dataclass(frozen=True, slots=True)
class Part:
    """One part of an object store's multipart upload."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class UploadSession:
    """An upload in progress: everything a process needs to continue it."""

    id: str
    repository: str
    offset: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0  # last activity, by the coordinator's clock
    hash_state: bytes | None = None  # a serialised running digest of the first ``offset`` bytes
    multipart_id: str | None = None
    parts: tuple[Part, ...] = field(default_factory=tuple)


class Coordinator(Protocol):
    """Shared state of every process serving one store. All times are the coordinator's clock."""

    name: str

    async def now(self) -> float:
        """The coordinator's clock (epoch seconds): the only clock liveness and expiry use."""

    # -- locks ---------------------------------------------------------------------------------

    def lock(
        self, name: str, *, shared: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[None]:
        """Held across every process (and replica) using this coordinator; readers/writer when
        ``shared``. With ``wait=False`` raise :class:`LockBusy` instead of waiting. Within one
        process it excludes tasks exactly as it excludes processes."""

    # -- upload sessions -----------------------------------------------------------------------

    async def create_session(self, session_id: str, repository: str) -> UploadSession:
        """A new session at offset 0, started and active now."""

    async def get_session(self, session_id: str) -> UploadSession | None: ...

    async def update_session(
        self,
        session_id: str,
        *,
        offset: int,
        hash_state: bytes | None = None,
        multipart_id: str | None = None,
        parts: Sequence[Part] = (),
    ) -> UploadSession | None:
        """Record progress (and mark the session active now); None if it does not exist."""

    async def delete_session(self, session_id: str) -> bool:
        """False if it did not exist."""

    async def idle_sessions(self, idle_seconds: float) -> list[UploadSession]:
        """Sessions with no activity for longer than ``idle_seconds``."""

    # -- GC liveness ---------------------------------------------------------------------------

    async def referenced(self, keys: Sequence[str]) -> None:
        """Record that ``keys`` were made reachable (or re-used) now. Never moves a record back."""

    async def last_referenced(self, keys: Sequence[str]) -> list[float | None]:
        """When each key was last recorded, None if never (or forgotten)."""

    async def forget(self, keys: Sequence[str]) -> None:
        """Drop the records of ``keys`` (content that was deleted)."""

    # -- generations ---------------------------------------------------------------------------

    async def bump(self, topic: str) -> int:
        """Advance a topic's generation; returns the new value (the first bump returns 1)."""

    async def generation(self, topic: str) -> int:
        """The current generation (0 before the first bump)."""

    # -- leases --------------------------------------------------------------------------------

    async def acquire_lease(self, job: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease on ``job`` for ``ttl`` seconds. True if ``holder`` has it now:
        it was free, expired, or already ``holder``'s."""

    async def release_lease(self, job: str, holder: str) -> None:
        """Give the lease up, if ``holder`` has it."""

    async def lease_holder(self, job: str) -> str | None:
        """Who holds an unexpired lease on ``job``."""

    async def close(self) -> None: ...
