"""What a worker holds of the notifications: the queue, the sender, and their status.

Two implementations sit behind this seam, chosen in ``app.create_notifier``: the store's spool
with :class:`notify.deliver.Deliverer` on one machine, the PostgreSQL outbox with
:class:`notify.outbox.OutboxDeliverer` when ``database.dsn`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from dockyard.config import Notifications
from dockyard.notify.queue import EventQueue


class Sender(Protocol):
    holder: str

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def purge(self, name: str) -> int:
        """Drop what endpoint ``name`` has not had yet (holding the sender's lease); how many."""
        ...

    async def redeliver(self, name: str) -> int:
        """Clear endpoint ``name``'s backoff so its waiting events go now; how many wait."""
        ...

    async def status(self) -> list[dict[str, Any]]: ...

    async def waiting(self, name: str, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` events enabled endpoint ``name`` has not had yet, in order."""
        ...


@dataclass(slots=True)
class Notifier:
    spool: EventQueue
    deliverer: Sender
    settings: Notifications

    async def status(self) -> list[dict[str, Any]]:
        """Per endpoint: events waiting, consecutive failures, last error and last success,
        delivered and dropped counts (from the store or the database, so any worker answers)."""
        return await self.deliverer.status()
