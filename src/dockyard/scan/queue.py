"""The scan queue: images waiting for their SBOMs, durable across restarts, and each one's result.

Two implementations of one protocol: files in the store (``_dockyard/scans/queue/<key>`` and
``results/<key>``, for one machine: every worker process sees them, and they survive a restart),
and PostgreSQL tables (``scan_queue``, ``scan_results``: migration 0008) when ``database.dsn``
is set, so the replicas of a store share one queue. A job is one entry per repository and digest:
queuing it again only moves its time. The scanner removes it when done only if that time is
still the one it read, so an image queued again during its scan is scanned again, not lost. A
scanner that dies mid-job leaves its entry, and the next scanner takes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dockyard.errors import PathNotFound
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

if TYPE_CHECKING:  # PostgreSQL loads only when configured
    from dockyard.coord.postgres import PostgresCoordinator


async def read_json(driver: CheckedDriver, path: str) -> Any:
    """The JSON in ``path``; None when it is missing or unreadable (a half-written file is
    written again by its writer; a reader must never fail on it)."""
    try:
        return json.loads(await driver.get_content(path))
    except (PathNotFound, ValueError):
        return None


def job_key(repository: str, digest: str) -> str:
    return hashlib.sha256(f"{repository}@{digest}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class QueuedScan:
    repository: str
    digest: str
    reason: str  # "push", "demand", "rescan" (the advisory database changed: re-match only)
    queued_at: float

    @property
    def key(self) -> str:
        return job_key(self.repository, self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "reason": self.reason,
            "queued": self.queued_at,
        }


class ScanQueue(Protocol):
    async def add(self, job: QueuedScan) -> None:
        """Queue ``job`` (again: its time moves)."""

    async def pending(self, limit: int = 100) -> list[QueuedScan]:
        """Up to ``limit`` queued jobs, oldest first."""

    async def finish(self, job: QueuedScan, result: dict[str, Any], now: float) -> None:
        """Record ``job``'s result and take it off the queue unless it was queued again since."""

    async def result(self, repository: str, digest: str) -> dict[str, Any] | None:
        """The last result for an image, with ``finished`` (epoch seconds); None before one."""

    async def results(self) -> list[dict[str, Any]]:
        """Every image's last result (what a rescan walks when the advisory database changes)."""


class StoreScanQueue:
    """The queue as small JSON files in the store, next to the registry's own data."""

    def __init__(self, driver: CheckedDriver) -> None:
        self.driver = driver

    def _queued(self, key: str) -> str:
        return f"{paths.SCANS}/queue/{key}"

    def _result(self, key: str) -> str:
        return f"{paths.SCANS}/results/{key}"

    async def add(self, job: QueuedScan) -> None:
        await self.driver.put_content(self._queued(job.key), json.dumps(job.to_json()).encode())

    async def pending(self, limit: int = 100) -> list[QueuedScan]:
        try:
            keys = await self.driver.list_dir(f"{paths.SCANS}/queue")
        except PathNotFound:
            return []
        jobs = []
        for key in keys:
            raw = await read_json(self.driver, self._queued(key))
            if isinstance(raw, dict):
                jobs.append(_job(raw))
        return sorted(jobs, key=lambda j: j.queued_at)[:limit]

    async def finish(self, job: QueuedScan, result: dict[str, Any], now: float) -> None:
        record = {"repository": job.repository, "digest": job.digest, "finished": now, **result}
        await self.driver.put_content(self._result(job.key), json.dumps(record).encode())
        current = await read_json(self.driver, self._queued(job.key))
        if isinstance(current, dict) and current.get("queued") == job.queued_at:
            await self.driver.delete_many([self._queued(job.key)])

    async def result(self, repository: str, digest: str) -> dict[str, Any] | None:
        raw = await read_json(self.driver, self._result(job_key(repository, digest)))
        return raw if isinstance(raw, dict) else None

    async def results(self) -> list[dict[str, Any]]:
        try:
            keys = await self.driver.list_dir(f"{paths.SCANS}/results")
        except PathNotFound:
            return []
        found = [await read_json(self.driver, self._result(key)) for key in keys]
        return [r for r in found if isinstance(r, dict)]


def _job(raw: dict[str, Any]) -> QueuedScan:
    return QueuedScan(
        str(raw["repository"]), str(raw["digest"]), str(raw.get("reason", "")), float(raw["queued"])
    )


class PgScanQueue:
    """The queue in the coordinator's PostgreSQL database, shared by every replica."""

    def __init__(self, pg: PostgresCoordinator) -> None:
        self.pg = pg

    async def add(self, job: QueuedScan) -> None:
        await self.pg.statement(
            "INSERT INTO scan_queue (key, repository, digest, reason, queued_at)"
            " VALUES (%(key)s, %(repository)s, %(digest)s, %(reason)s, %(queued)s)"
            " ON CONFLICT (key) DO UPDATE SET reason = excluded.reason, queued_at = excluded.queued_at",
            key=job.key,
            repository=job.repository,
            digest=job.digest,
            reason=job.reason,
            queued=job.queued_at,
        )

    async def pending(self, limit: int = 100) -> list[QueuedScan]:
        rows = await self.pg.statement(
            "SELECT repository, digest, reason, queued_at FROM scan_queue ORDER BY queued_at LIMIT %(limit)s",
            limit=limit,
        )
        return [QueuedScan(r[0], r[1], r[2], float(r[3])) for r in rows]

    async def finish(self, job: QueuedScan, result: dict[str, Any], now: float) -> None:
        record = {"repository": job.repository, "digest": job.digest, "finished": now, **result}
        async with self.pg.transaction() as tx:
            await tx.fetch_all(
                "INSERT INTO scan_results (key, repository, digest, result, finished_at)"
                " VALUES (%(key)s, %(repository)s, %(digest)s, %(result)s::jsonb, %(finished)s)"
                " ON CONFLICT (key) DO UPDATE"
                " SET result = excluded.result, finished_at = excluded.finished_at",
                key=job.key,
                repository=job.repository,
                digest=job.digest,
                result=json.dumps(record),
                finished=now,
            )
            await tx.fetch_all(
                "DELETE FROM scan_queue WHERE key = %(key)s AND queued_at = %(queued)s",
                key=job.key,
                queued=job.queued_at,
            )

    async def result(self, repository: str, digest: str) -> dict[str, Any] | None:
        rows = await self.pg.statement(
            "SELECT result FROM scan_results WHERE key = %(key)s", key=job_key(repository, digest)
        )
        if not rows:
            return None
        return _record(rows[0][0])

    async def results(self) -> list[dict[str, Any]]:
        rows = await self.pg.statement("SELECT result FROM scan_results ORDER BY key")
        return [_record(row[0]) for row in rows]


def _record(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else dict(json.loads(value))
