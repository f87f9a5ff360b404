"""The audit log in PostgreSQL (``database.dsn``): every replica writes to one table and any
replica answers ``GET /admin/v1/audit`` for all of them.

Records are the same JSON objects as in the store (``audit.log``), one row each in ``audit_log``
(migration 0006) with the time, action, actor and repository as columns to filter on; they are
group-committed and durable before the request that made the change is answered. Rows older
than ``audit.retention`` are deleted when a worker sees a new day, as the store deletes days.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from dockyard.audit.log import AuditLog, Query
from dockyard.coord.postgres import PostgresCoordinator
from dockyard.notify.queue import PgAppender
from dockyard.storage.drivers.checked import CheckedDriver

log = logging.getLogger("dockyard.audit")
INSERT = (
    "INSERT INTO audit_log (at, action, actor, repository, record)"
    " SELECT (x->>'time')::timestamptz, x->>'action', x->>'actor', x->>'repository', x"
    " FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS t(x, n) ORDER BY n"
)


def _rows(batch: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    return [record for _, record in batch]


class PgAuditLog(AuditLog):
    def __init__(
        self,
        pg: PostgresCoordinator,
        driver: CheckedDriver,
        retention: float,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(driver, retention, clock=clock)
        self.pg = pg
        self.spool = PgAppender(pg, INSERT, _rows)

    async def prune(self) -> int:
        cutoff = (self.clock() - int(self.retention * 1e9)) / 1e9
        rows = await self.pg.statement(
            "DELETE FROM audit_log WHERE at < to_timestamp(%(c)s) RETURNING id", c=cutoff
        )
        if rows:
            log.info("audit records deleted past retention", extra={"records": len(rows)})
        return len(rows)

    async def query(self, query: Query) -> list[dict[str, Any]]:
        rows = await self.pg.statement(
            "SELECT record FROM audit_log WHERE at >= to_timestamp(%(since)s)"
            " AND (%(repository)s::text IS NULL OR repository = %(repository)s)"
            " AND (%(actor)s::text IS NULL OR actor = %(actor)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s)"
            " ORDER BY at, id LIMIT %(limit)s",
            since=query.since or 0.0,
            repository=query.repository,
            actor=query.actor,
            action=query.action,
            limit=query.limit,
        )
        return [row[0] for row in rows]
