"""The webhook outbox in PostgreSQL, for replicas sharing one database (``database.dsn``).

Every replica's subscriber inserts, before the request is answered, one row per event and per
endpoint that wants it (``notification_outbox``, migration 0006). One process of all the
replicas sends: the holder of the coordinator's ``notifications`` lease, the same lease the
spool's sender uses, now kept in the database. Per endpoint a step takes the oldest rows by id
(at most :data:`deliver.STEP`), sends them at most :data:`deliver.BATCH` and
:data:`deliver.BODY` bytes of them per envelope (fewer after failures:
``deliver.envelope_size``), and deletes the ones the endpoint answered 2xx in one
statement after the step; a failure retries from the same row after the endpoint's backoff, so
order per repository is kept and nothing is skipped while the endpoint is down. A sender that
dies between a 2xx and the delete sends those rows again (at least once). Past
``notifications.maxpending`` rows for an endpoint, the oldest are deleted, counted in its
``dropped`` and logged, and the registry never waits.
Health per endpoint is a JSON row in ``notification_endpoints``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from dockyard.config import Endpoint, Notifications
from dockyard.coord.postgres import PostgresCoordinator
from dockyard.metrics.collectors import Metrics
from dockyard.notify.deliver import STEP, EndpointState, envelope, envelope_size, record_attempt, status_row
from dockyard.notify.envelope import wanted
from dockyard.notify.leader import LeasedSender, Sleep
from dockyard.notify.queue import PgAppender
from dockyard.notify.spool import Record

log = logging.getLogger("dockyard.notify")
INSERT = (
    "INSERT INTO notification_outbox (endpoint, repository, event, queued_at)"
    " SELECT x->>0, x->>1, x->2, {now}"
    " FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS t(x, n) ORDER BY n"
)


def outbox(pg: PostgresCoordinator, settings: Notifications) -> PgAppender:
    """The queue the subscriber writes to: a row per enabled endpoint that wants the event."""
    endpoints = [e for e in settings.endpoints if not e.disabled]

    def rows(batch: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        return [[e.name, repo, event] for repo, event in batch for e in endpoints if wanted(e, event)]

    return PgAppender(pg, INSERT, rows, window=settings.pullwindow)


class OutboxDeliverer(LeasedSender):
    def __init__(
        self,
        pg: PostgresCoordinator,
        settings: Notifications,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.pg = pg
        self.settings = settings
        self.endpoints = [e for e in settings.endpoints if not e.disabled]
        self.maxpending = settings.maxpending
        self.metrics = metrics
        self.clock = clock
        super().__init__(pg, self.endpoints, sleep=sleep, lease_seconds=settings.lease)

    # -- state ----------------------------------------------------------------------------------

    async def load_state(self, name: str) -> EndpointState:
        rows = await self.pg.statement("SELECT state FROM notification_endpoints WHERE name = %(n)s", n=name)
        return EndpointState.from_json(rows[0][0]) if rows else EndpointState()

    async def _save(self, name: str, state: EndpointState) -> None:
        await self.pg.statement(
            "INSERT INTO notification_endpoints (name, state) VALUES (%(n)s, %(s)s::jsonb)"
            " ON CONFLICT (name) DO UPDATE SET state = excluded.state",
            n=name,
            s=json.dumps(state.to_json()),
        )

    async def pending(self, name: str) -> int:
        rows = await self.pg.statement(
            "SELECT count(*) FROM notification_outbox WHERE endpoint = %(n)s", n=name
        )
        return int(rows[0][0])

    async def status(self) -> list[dict[str, Any]]:
        out = []
        for endpoint in self.settings.endpoints:
            state = await self.load_state(endpoint.name)
            pending = 0 if endpoint.disabled else await self.pending(endpoint.name)
            out.append(status_row(endpoint, state, pending))
        return out

    async def purge(self, name: str) -> int:
        rows = await self.pg.statement(
            "DELETE FROM notification_outbox WHERE endpoint = %(n)s RETURNING id", n=name
        )
        state = await self.load_state(name)
        state.dropped += len(rows)
        state.failures, state.retry_at = 0, 0.0
        await self._save(name, state)
        return len(rows)

    async def redeliver(self, name: str) -> int:
        """Send endpoint ``name``'s waiting rows at the next round, not after its backoff."""
        state = await self.load_state(name)
        state.failures, state.retry_at = 0, 0.0
        await self._save(name, state)
        return await self.pending(name)

    async def waiting(self, name: str, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` events endpoint ``name`` has not had, in row order (the UI)."""
        rows = await self.pg.statement(
            "SELECT event FROM notification_outbox WHERE endpoint = %(n)s ORDER BY id LIMIT %(k)s",
            n=name,
            k=limit,
        )
        return [row[0] for row in rows]

    # -- one round ------------------------------------------------------------------------------

    async def step(self) -> bool:
        """Send each endpoint that is due and has rows waiting up to a step's rows; True when some
        endpoint still has rows it could be sent now."""
        results = await asyncio.gather(*(self._endpoint_step(e) for e in self.endpoints))
        return any(results)

    async def _endpoint_step(self, endpoint: Endpoint) -> bool:
        state = await self.load_state(endpoint.name)
        waiting = await self.pending(endpoint.name)
        if waiting > self.maxpending:  # the oldest go, counted and logged
            dropped = await self.pg.statement(
                "DELETE FROM notification_outbox WHERE id IN (SELECT id FROM notification_outbox"
                " WHERE endpoint = %(n)s ORDER BY id LIMIT %(k)s) RETURNING id",
                n=endpoint.name,
                k=waiting - self.maxpending,
            )
            state.dropped += len(dropped)
            waiting -= len(dropped)
            self.handled += len(dropped)
            log.warning(
                "notification queue full: oldest events dropped",
                extra={"endpoint": endpoint.name, "dropped": len(dropped), "maxpending": self.maxpending},
            )
            if self.metrics is not None:
                self.metrics.webhook_dropped.labels(endpoint.name).inc(len(dropped))
            await self._save(endpoint.name, state)
        if self.metrics is not None:
            self.metrics.webhook_queue.labels(endpoint.name).set(waiting)
        now = self.clock()
        if waiting == 0 or now < state.retry_at:
            return False
        rows = await self.pg.statement(
            "SELECT id, event FROM notification_outbox WHERE endpoint = %(n)s ORDER BY id LIMIT %(k)s",
            n=endpoint.name,
            k=STEP,
        )
        # Envelope after envelope until the step's rows are sent or one fails; the rows sent are
        # deleted and the health written once after them (a sender that dies before that delete
        # sends them again: at least once).
        sent: list[int] = []
        error = None
        start = 0
        while start < len(rows):
            end = start + envelope_size(state.failures)
            batch = envelope([Record.of((r[0], 0, 0), "", r[1]) for r in rows[start:end]])
            start += len(batch)
            error = await self.client.post(endpoint, [r.raw for r in batch])
            record_attempt(state, endpoint, error, len(batch), now, self.metrics)
            if error is not None:
                break
            sent.extend(r.key[0] for r in batch)
            now = self.clock()
        if sent:
            await self.pg.statement("DELETE FROM notification_outbox WHERE id = ANY(%(ids)s)", ids=sent)
        self.handled += len(sent)
        await self._save(endpoint.name, state)
        return error is None and waiting > len(sent)
