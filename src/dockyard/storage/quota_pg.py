"""Quota usage kept in the replicas' database (``database.dsn``), so limits hold across replicas.

``quota_blobs`` holds, per rule, each digest counted and its size; a push through any replica
adds its blob at once, so the next check on every replica sees it. The store stays the truth:
when a rule's count is older than ``CACHE_SECONDS`` (by the database's clock), one replica walks
the store again (the others keep answering from the rows meanwhile) and replaces the rule's rows
with what it found, keeping rows added after its walk began (pushes during the walk) and
dropping what deletes and garbage collection removed.
"""

from __future__ import annotations

import hashlib

from dockyard.coord.postgres import NOW, PostgresCoordinator
from dockyard.errors import LockBusy
from dockyard.oci.digest import Digest
from dockyard.storage.quota import CACHE_SECONDS, QuotaRule, Scan


def _lock(rule: QuotaRule) -> str:
    return "quota-" + hashlib.sha256(rule.repositories.encode()).hexdigest()[:32]


class PostgresLedger:
    def __init__(self, coordinator: PostgresCoordinator) -> None:
        self.coordinator = coordinator

    async def _rescan(self, rule: QuotaRule, scan: Scan) -> None:
        began = await self.coordinator.now()
        sizes = await scan()
        digests = sorted(sizes)
        async with self.coordinator.transaction() as tx:  # under the rule's lock (usage)
            await tx.fetch_all(
                "DELETE FROM quota_blobs WHERE rule = %(rule)s AND added_at < %(began)s"
                " AND NOT (digest = ANY(%(digests)s))",
                rule=rule.repositories,
                began=began,
                digests=[str(d) for d in digests],
            )
            await tx.fetch_all(
                f"INSERT INTO quota_blobs (rule, digest, size, added_at) SELECT %(rule)s, d, s, {NOW}"
                " FROM unnest(%(digests)s::text[], %(sizes)s::bigint[]) AS t(d, s)"
                " ON CONFLICT (rule, digest) DO NOTHING",
                rule=rule.repositories,
                digests=[str(d) for d in digests],
                sizes=[sizes[d] for d in digests],
            )
            await tx.fetch_all(
                "INSERT INTO quota_scans (rule, scanned_at) VALUES (%(rule)s, %(began)s)"
                " ON CONFLICT (rule) DO UPDATE SET scanned_at = excluded.scanned_at",
                rule=rule.repositories,
                began=began,
            )

    async def usage(
        self, rule: QuotaRule, digest: Digest | None, scan: Scan, *, fresh: bool = False
    ) -> tuple[int, bool]:
        row = await self.coordinator.fetch_one(
            f"SELECT {NOW} - scanned_at FROM quota_scans WHERE rule = %(rule)s", rule=rule.repositories
        )
        if row is None or fresh or float(row[0]) >= CACHE_SECONDS:
            try:  # one replica walks; the others answer from the rows meanwhile
                async with self.coordinator.lock(_lock(rule), wait=row is None or fresh):
                    await self._rescan(rule, scan)
            except LockBusy:
                pass
        row = await self.coordinator.fetch_one(
            "SELECT coalesce(sum(size), 0), coalesce(bool_or(digest = %(digest)s), false)"
            " FROM quota_blobs WHERE rule = %(rule)s",
            rule=rule.repositories,
            digest=str(digest) if digest is not None else "",
        )
        return int(row[0]), bool(row[1])

    async def added(self, rule: QuotaRule, digest: Digest, size: int) -> int | None:
        insert = (
            "INSERT INTO quota_blobs (rule, digest, size, added_at)"
            f" VALUES (%(rule)s, %(digest)s, %(size)s, {NOW})"
            " ON CONFLICT (rule, digest) DO NOTHING RETURNING size"
        )
        if rule.warning is None:
            await self.coordinator.fetch_all(insert, rule=rule.repositories, digest=str(digest), size=size)
            return None
        # The sum's snapshot is the statement's, before the insert: the new row is added to it.
        rows = await self.coordinator.fetch_all(
            f"WITH ins AS ({insert}) SELECT (SELECT coalesce(sum(size), 0) FROM quota_blobs"
            " WHERE rule = %(rule)s) + ins.size FROM ins",
            rule=rule.repositories,
            digest=str(digest),
            size=size,
        )
        return int(rows[0][0]) if rows else None
