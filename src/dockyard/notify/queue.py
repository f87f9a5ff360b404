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
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from dockyard.coord.postgres import PostgresCoordinator

log = logging.getLogger("dockyard.notify")
# An event to queue: its JSON, or (a pull's, ``EventQueue.add_deferred``) what makes it at write.
Queued: TypeAlias = "dict[str, Any] | Callable[[], dict[str, Any]]"


def made_all(batch: list[Any]) -> list[Any]:
    """A batch's records (tuples whose last field is a :data:`Queued` event) with each deferred
    event made now; a record whose event cannot be made is logged and left out, and the others
    are still written. Both queues' writers resolve their batch through this."""
    out = []
    for record in batch:
        event = record[-1]
        if not callable(event):
            out.append(record)
            continue
        try:
            out.append((*record[:-1], event()))
        except Exception:
            log.exception("an event could not be described; it is left out")
    return out


def settle(waiters: list[asyncio.Future[None]], error: BaseException | None = None) -> None:
    """Answer the requests waiting on one group commit: durable, or failed with ``error``."""
    for waiter in waiters:
        if not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


def retrieve(waiter: asyncio.Future[None]) -> None:
    """A done callback for a write nobody awaits: its failure is logged by the queue already."""
    if not waiter.cancelled():
        waiter.exception()


class Flushes:
    """The group commit's bookkeeping both queues share: the records not yet taken
    (``_pending``) and who waits on them (``_waiters``) and on the write in flight
    (``_inflight``), so :meth:`flushed` can wait for everything queued so far.

    A record queued with ``defer`` (a pull's event) starts no write of its own: it goes with the
    next write another record starts, or at the latest ``window`` seconds after it was queued (a
    write in flight when that time comes finishes first). Under a stream of pulls that is one
    write per window instead of one per fsync, and the sender gets a few large files instead of
    hundreds of small ones a second."""

    window: float  # seconds a deferred record may wait for a write
    _pending: list[Any]
    _waiters: list[asyncio.Future[None]]
    _inflight: list[asyncio.Future[None]] | None
    _writer: asyncio.Task[None] | None
    _timer: asyncio.TimerHandle | None
    _urgent: bool  # a record not deferred waits (or the window of a deferred one is up)

    def _init_flushes(self, window: float) -> None:
        self.window = window
        self._pending, self._waiters = [], []
        self._inflight, self._writer, self._timer = None, None, None
        self._deferred: asyncio.Future[None] | None = None
        self._urgent = False

    def _queue(self, record: Any, defer: bool) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        self._pending.append(record)
        if defer and self.window > 0:
            # Nobody waits for a deferred record: the records of one write share a future,
            # whose failure the writer has logged (retrieved here, so asyncio does not warn).
            waiter = self._deferred
            if waiter is None:
                waiter = self._deferred = loop.create_future()
                waiter.add_done_callback(retrieve)
                self._waiters.append(waiter)
        else:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            self._urgent = True
        if self._writer is None:
            if self._urgent:
                self._start()
            elif self._timer is None:
                self._timer = loop.call_later(self.window, self._due)
        return waiter

    def _due(self) -> None:
        self._timer = None
        self._urgent = True
        if self._writer is None:
            self._start()

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._writer = asyncio.get_running_loop().create_task(self._write_all())

    def _take(self) -> tuple[list[Any], list[asyncio.Future[None]]] | None:
        """The next batch to write (every record queued so far) with its waiters, or None when
        nothing is due: nothing waits, or only deferred records whose window is not up."""
        if not (self._pending and self._urgent):
            return None
        batch, waiters = self._pending, self._waiters
        self._pending, self._waiters, self._inflight = [], [], waiters
        self._deferred, self._urgent = None, False
        return batch, waiters

    def _idle(self) -> None:
        """The writer stops: deferred records left behind get their window's timer."""
        self._writer, self._inflight = None, None
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window, self._due)

    async def _write_all(self) -> None:
        try:
            while (taken := self._take()) is not None:
                await self._write(*taken)
        finally:
            self._idle()

    async def _write(self, batch: list[Any], waiters: list[asyncio.Future[None]]) -> None:
        raise NotImplementedError

    def _now(self) -> None:
        """Write what is queued without waiting out a deferred record's window."""
        if self._pending:
            self._due()

    async def flushed(self) -> None:
        """Return once every record queued before this call is written, durable or failed (the
        request that queued it hears of a failure; this waiter does not)."""
        self._now()
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

    async def drain(self) -> None:
        """Wait until everything queued so far is written (at shutdown)."""
        self._now()
        while self._writer is not None:
            await asyncio.shield(self._writer)


class EventQueue(Protocol):
    def add(self, repository: str, event: dict[str, Any], *, defer: bool = False) -> asyncio.Future[None]:
        """Queue ``event``; the future is done when it is durable (or failed to be). A deferred
        event (a pull's) may wait up to the queue's window for a write (``Flushes``)."""
        ...

    def add_deferred(self, repository: str, make: Callable[[], dict[str, Any]]) -> None:
        """Queue a pull's event, deferred (as ``add(..., defer=True)``; nobody waits for it),
        and made by ``make`` only when its write comes: describing and encoding it leave the
        request (under load the subscriber's share of a pull's request fell from 13 to 5 us),
        and the write does that work for the window's pulls in one loop. The CPU is about the
        same; the pull's answer does not wait for it."""
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

    def __init__(self, pg: PostgresCoordinator, sql: str, rows: Rows, *, window: float = 0.0) -> None:
        self.pg = pg
        self.sql = sql
        self.rows = rows
        self._init_flushes(window)

    def add(self, repository: str, event: dict[str, Any], *, defer: bool = False) -> asyncio.Future[None]:
        return self._queue((repository, event), defer)

    def add_deferred(self, repository: str, make: Callable[[], dict[str, Any]]) -> None:
        self._queue((repository, make), True)

    async def _write(self, batch: list[Any], waiters: list[asyncio.Future[None]]) -> None:
        try:
            rows = self.rows(made_all(batch))
            if rows:
                await self.pg.statement(self.sql, rows=json.dumps(rows))
        except Exception as exc:
            log.exception("failed to queue events in the database", extra={"count": len(batch)})
            settle(waiters, exc)
            return
        settle(waiters)
