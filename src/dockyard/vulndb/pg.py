"""The advisory database in the coordinator's PostgreSQL (``database.dsn``, migration 0007): one
database for every replica, written by whichever runs ``dockyard vulndb update``.

Rows travel as one JSON array per statement (``jsonb_to_recordset``), so a batch of a thousand
advisories is a handful of round trips, in one transaction with the deletes of their old rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dockyard.coord.postgres import PostgresCoordinator
from dockyard.vulndb.osv import Advisory
from dockyard.vulndb.severity import Severity
from dockyard.vulndb.store import (
    ECOSYSTEMS,
    IMPORTS_SHOWN,
    Candidate,
    VulnStore,
    advisory_row,
    affected_rows,
    alias_rows,
    candidate,
    severities_of,
    status_of,
)

_INSERT_ADVISORIES = (
    "INSERT INTO vuln_advisories"
    " SELECT id, modified, withdrawn, aliases::jsonb, summary, cvss_level, cvss_score, cvss_vector, rating"
    " FROM jsonb_to_recordset(%(rows)s::jsonb) AS t(id text, modified float8, withdrawn float8,"
    " aliases text, summary text, cvss_level text, cvss_score float8, cvss_vector text, rating text)"
)
_INSERT_AFFECTED = (
    "INSERT INTO vuln_affected SELECT advisory, ecosystem, release, name, data::jsonb"
    " FROM jsonb_to_recordset(%(rows)s::jsonb)"
    " AS t(advisory text, ecosystem text, release text, name text, data text)"
)
_INSERT_ALIASES = (
    "INSERT INTO vuln_aliases SELECT alias, advisory"
    " FROM jsonb_to_recordset(%(rows)s::jsonb) AS t(alias text, advisory text)"
)


class PgVulnStore(VulnStore):
    backend = "postgres"

    def __init__(self, pg: PostgresCoordinator) -> None:
        self.pg = pg

    async def modified_of(self, ids: Sequence[str]) -> dict[str, float]:
        rows = await self.pg.statement(
            "SELECT id, modified FROM vuln_advisories WHERE id = ANY(%(ids)s)", ids=list(ids)
        )
        return {str(i): float(m) for i, m in rows}

    async def replace(self, advisories: Sequence[Advisory]) -> None:
        if not advisories:
            return
        ids = [a.id for a in advisories]
        async with self.pg.transaction() as tx:
            await tx.fetch_all("DELETE FROM vuln_affected WHERE advisory = ANY(%(ids)s)", ids=ids)
            await tx.fetch_all("DELETE FROM vuln_aliases WHERE advisory = ANY(%(ids)s)", ids=ids)
            await tx.fetch_all("DELETE FROM vuln_advisories WHERE id = ANY(%(ids)s)", ids=ids)
            await tx.fetch_all(_INSERT_ADVISORIES, rows=json.dumps([advisory_row(a) for a in advisories]))
            affected = [row for a in advisories for row in affected_rows(a)]
            if affected:
                await tx.fetch_all(_INSERT_AFFECTED, rows=json.dumps(affected))
            await tx.fetch_all(
                _INSERT_ALIASES, rows=json.dumps([r for a in advisories for r in alias_rows(a)])
            )

    async def candidates(self, ecosystem: str, names: Sequence[str]) -> list[Candidate]:
        rows = await self.pg.statement(
            "SELECT a.id, a.aliases, a.summary, a.cvss_level, a.cvss_score, a.cvss_vector, a.rating,"
            " f.ecosystem, f.release, f.name, f.data"
            " FROM vuln_affected f JOIN vuln_advisories a ON a.id = f.advisory"
            " WHERE a.withdrawn IS NULL AND f.ecosystem = %(eco)s AND f.name = ANY(%(names)s)",
            eco=ecosystem,
            names=list(names),
        )
        return [candidate(row) for row in rows]

    async def alias_severities(self, ids: Sequence[str]) -> dict[str, Severity]:
        rows = await self.pg.statement(
            "SELECT DISTINCT mine.advisory, other.id, other.cvss_level, other.cvss_score, other.cvss_vector"
            " FROM vuln_aliases mine JOIN vuln_aliases theirs ON theirs.alias = mine.alias"
            " JOIN vuln_advisories other ON other.id = theirs.advisory"
            " WHERE mine.advisory = ANY(%(ids)s) AND other.id <> mine.advisory"
            " AND other.cvss_level IS NOT NULL AND other.withdrawn IS NULL",
            ids=list(ids),
        )
        return severities_of(rows)

    async def record_import(
        self, source: str, started_at: float, seconds: float, counts: dict[str, Any]
    ) -> None:
        await self.pg.statement(
            "INSERT INTO vuln_imports (source, started_at, seconds, counts)"
            " VALUES (%(source)s, %(started)s, %(seconds)s, %(counts)s::jsonb)",
            source=source,
            started=started_at,
            seconds=seconds,
            counts=json.dumps(counts),
        )

    async def revision(self) -> int:
        rows = await self.pg.statement(
            "SELECT count(*) FROM vuln_imports WHERE (counts->>'added')::int + (counts->>'updated')::int > 0"
        )
        return int(rows[0][0])

    async def status(self) -> dict[str, Any]:
        totals = await self.pg.statement("SELECT count(*), count(withdrawn) FROM vuln_advisories")
        ecosystems = await self.pg.statement(ECOSYSTEMS)
        imports = await self.pg.statement(
            "SELECT source, started_at, seconds, counts FROM vuln_imports ORDER BY id DESC LIMIT %(n)s",
            n=IMPORTS_SHOWN,
        )
        total, withdrawn = totals[0]
        revision = await self.revision()
        return {
            "backend": self.backend,
            "revision": revision,
            **status_of(int(total), int(withdrawn), ecosystems, imports),
        }
