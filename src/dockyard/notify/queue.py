"""The seam between the registry and where its events wait: one small protocol, two homes.

``EventQueue`` is what the subscribers (webhooks, audit) write to: ``add`` returns a future done
once the record is durable, and the request that made the change waits for it before it is
answered. On one machine that is the store's spool (``notify.spool.Spool``); with
``database.dsn`` it is :class:`PgAppender`, rows in the coordinator's PostgreSQL, so every
replica writes to and reads from one queue. Both group-commit: records that arrive while a write
is in flight go together in the next one (one transaction, one ``INSERT`` statement).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dockyard.coord.postgres import PostgresCoordinator

log = logging.getLogger("dockyard.notify")


def settle(waiters: list[asyncio.Future[None]], error: BaseException | None = None) -> None:
    """Answer the requests waiting on one group commit: durable, or failed with ``error``."""
    for waiter in waiters:
        if not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


class Flushes:
    """The group commit's bookkeeping both queues share: who waits on the records not yet taken
    (``_waiters``) and on the write in flight (``_inflight``), so :meth:`flushed` can wait for
    everything queued so far."""

    _waiters: list[asyncio.Future[None]]
    _inflight: list[asyncio.Future[None]] | None

    async def flushed(self) -> None:
        """Return once every record queued before this call is written, durable or failed (the
        request that queued it hears of a failure; this waiter does not)."""
        if self._waiters:
            waiters = self._waiters
        elif self._inflight is not None:
            waiters = self._inflight
        else:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        await asyncio.wait([waiter])
        if not waiter.cancelled():
            waiter.exception()  # retrieved: the failure is the queueing request's to report


class EventQueue(Protocol):
    def add(self, repository: str, event: dict[str, Any]) -> asyncio.Future[None]:
        """Queue ``event``; the future is done when it is durable (or failed to be)."""
        ...

    async def drain(self) -> None:
        """Wait until everything queued so far is written (at shutdown)."""
        ...

    async def flushed(self) -> None:
        """Wait until every event queued before the call is written (``notify.order``)."""
        ...


Rows = Callable[[list[tuple[str, dict[str, Any]]]], list[Any]]


class PgAppender(Flushes):
    """Group-committed inserts of JSON rows: ``sql`` gets the batch as ``%(rows)s``, a JSON array
    built by ``rows`` from the queued ``(repository, event)`` pairs, in queue order."""

    def __init__(self, pg: PostgresCoordinator, sql: str, rows: Rows) -> None:
        self.pg = pg
        self.sql = sql
        self.rows = rows
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._inflight: list[asyncio.Future[None]] | None = None
        self._writer: asyncio.Task[None] | None = None

    def add(self, repository: str, event: dict[str, Any]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        self._pending.append((repository, event))
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if self._writer is None:
            self._writer = loop.create_task(self._write_all())
        return waiter

    async def _write_all(self) -> None:
        try:
            while self._pending:
                batch, waiters = self._pending, self._waiters
                self._pending, self._waiters, self._inflight = [], [], waiters
                try:
                    rows = self.rows(batch)
                    if rows:
                        await self.pg.statement(self.sql, rows=json.dumps(rows))
                except Exception as exc:
                    log.exception("failed to queue events in the database", extra={"count": len(batch)})
                    settle(waiters, exc)
                    continue
                settle(waiters)
        finally:
            self._writer, self._inflight = None, None

    async def drain(self) -> None:
        while self._writer is not None:
            await asyncio.shield(self._writer)
