"""Keeping one repository's events in the order of its changes, across processes and replicas.

A change's event is recorded after the change commits, so two processes (or replicas) changing
one repository at the same moment could record their events in the other order than their
changes took effect: A moves ``latest`` first and B second, but B's event is queued first, and a
receiver ends up believing A's digest is ``latest``. With webhooks on, the registry model holds
:meth:`Ordering.change` around each change of a repository *and* the recording of its events:
one coordinator lock per repository (flock on one machine, an advisory lock in PostgreSQL with
replicas), released only once the events queued inside are durable
(``notify.order.RepositoryOrder``). So the next change of that
repository, on any process, is queued after, and the queue's order (the outbox's ids, the
spool's times) is the order of the changes. The sender delivers per endpoint in that order.

Pulls are reads and take no lock: their events go in the order they are queued.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Ordering(Protocol):
    def change(self, repository: str) -> AbstractAsyncContextManager[None]:
        """Held around one change of ``repository`` and the emission of its events."""
        ...


class Unordered:
    """No one listens for the order (no webhooks): a change holds nothing."""

    @contextlib.asynccontextmanager
    async def change(self, repository: str) -> AsyncIterator[None]:
        yield
