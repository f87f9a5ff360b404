"""Where advisories are kept: the tables, the rows an advisory becomes, and SQLite's store.

One table holds the advisories (id, modified time, withdrawn time, aliases, the CVSS level of
their own newest vector and the ecosystem's rating); ``vuln_affected`` holds one row per affected
package, keyed by (ecosystem, name) for the matcher, with the release and the ranges as JSON;
``vuln_aliases`` maps every id an advisory goes by (its own, its aliases, its upstream ids) to it,
so a record without a vector can borrow the severity of a record that shares an id with it;
``vuln_imports`` keeps each import's time and counts. PostgreSQL (``vulndb.pg``, migration 0007)
has the same tables. An import writes batches: advisories whose stored ``modified`` is as new
are left alone, changed ones are replaced whole (their old rows deleted in the same transaction).
"""

from __future__ import annotations

import asyncio
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SQLite module loads when the file is first opened
    import sqlite3

from dockyard.vulndb.osv import Advisory, Affected
from dockyard.vulndb.severity import Severity

SCHEMA = """
CREATE TABLE IF NOT EXISTS vuln_advisories (
    id text PRIMARY KEY,
    modified double precision NOT NULL,
    withdrawn double precision,
    aliases text NOT NULL,
    summary text NOT NULL,
    cvss_level text,
    cvss_score double precision,
    cvss_vector text,
    rating text
);
CREATE TABLE IF NOT EXISTS vuln_affected (
    advisory text NOT NULL,
    ecosystem text NOT NULL,
    release text NOT NULL,
    name text NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS vuln_affected_package ON vuln_affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS vuln_affected_advisory ON vuln_affected (advisory);
CREATE TABLE IF NOT EXISTS vuln_aliases (
    alias text NOT NULL,
    advisory text NOT NULL
);
CREATE INDEX IF NOT EXISTS vuln_aliases_alias ON vuln_aliases (alias);
CREATE INDEX IF NOT EXISTS vuln_aliases_advisory ON vuln_aliases (advisory);
CREATE TABLE IF NOT EXISTS vuln_imports (
    id integer PRIMARY KEY AUTOINCREMENT,
    source text NOT NULL,
    started_at double precision NOT NULL,
    seconds double precision NOT NULL,
    counts text NOT NULL
);
"""
IMPORTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored, not withdrawn advisory's entry for one package the matcher looks up."""

    advisory: str
    aliases: tuple[str, ...]
    summary: str
    cvss: Severity | None
    rating: str | None
    affected: Affected


def advisory_row(a: Advisory) -> dict[str, Any]:
    return {
        "id": a.id,
        "modified": a.modified,
        "withdrawn": a.withdrawn,
        "aliases": json.dumps(list(a.aliases)),
        "summary": a.summary,
        "cvss_level": a.cvss.level if a.cvss else None,
        "cvss_score": a.cvss.score if a.cvss else None,
        "cvss_vector": a.cvss.vector if a.cvss else None,
        "rating": a.rating,
    }


def affected_rows(a: Advisory) -> list[dict[str, Any]]:
    return [
        {
            "advisory": a.id,
            "ecosystem": e.ecosystem,
            "release": e.release,
            "name": e.name,
            "data": json.dumps(e.to_json()),
        }
        for e in a.affected
    ]


def alias_rows(a: Advisory) -> list[dict[str, Any]]:
    keys = dict.fromkeys((a.id, *a.aliases, *a.upstream))
    return [{"alias": k, "advisory": a.id} for k in keys]


def candidate(row: Sequence[Any]) -> Candidate:
    """A row of (advisory, aliases, summary, level, score, vector, rating, eco, release, name, data)."""
    ident, aliases, summary, level, score, vector, rating, eco, release, name, data = row
    cvss = Severity(level, score, vector, "cvss") if level else None
    loaded = json.loads(data) if isinstance(data, str) else data
    aliases = json.loads(aliases) if isinstance(aliases, str) else aliases
    return Candidate(
        ident, tuple(aliases), summary, cvss, rating, Affected.from_json(eco, release, name, loaded)
    )


class VulnStore(ABC):
    """The advisory database, whichever engine keeps it."""

    backend: str

    @abstractmethod
    async def modified_of(self, ids: Sequence[str]) -> dict[str, float]:
        """The stored ``modified`` time of those of ``ids`` that are stored."""

    @abstractmethod
    async def replace(self, advisories: Sequence[Advisory]) -> None:
        """Store ``advisories``, replacing every row a stored one of the same id had (one transaction)."""

    @abstractmethod
    async def candidates(self, ecosystem: str, names: Sequence[str]) -> list[Candidate]:
        """Entries of not withdrawn advisories for these package names of ``ecosystem``."""

    @abstractmethod
    async def alias_severities(self, ids: Sequence[str]) -> dict[str, Severity]:
        """For each of ``ids``: the worst CVSS level among the other records sharing an id with it."""

    @abstractmethod
    async def record_import(
        self, source: str, started_at: float, seconds: float, counts: dict[str, Any]
    ) -> None:
        """Keep one import's source, time and counts."""

    @abstractmethod
    async def revision(self) -> int:
        """How many imports changed something: it grows exactly when matching may answer
        differently, so a scanner that remembers it knows when to re-match stored SBOMs."""

    @abstractmethod
    async def status(self) -> dict[str, Any]:
        """Counts (advisories, withdrawn, per ecosystem) and the latest imports, for the admin API."""

    async def close(self) -> None:  # noqa: B027 - engines with nothing to close keep this
        """Release connections."""


def severities_of(rows: Sequence[Sequence[Any]]) -> dict[str, Severity]:
    """Rows of (asked id, other id, level, score, vector) → the worst per asked id."""
    from dockyard.vulndb.severity import RANK

    best: dict[str, Severity] = {}
    for asked, other, level, score, vector in rows:
        found = Severity(level, score, vector, f"alias:{other}")
        held = best.get(asked)
        if held is None or (RANK.get(level, 0), score or 0.0) > (RANK.get(held.level, 0), held.score or 0.0):
            best[asked] = found
    return best


def status_of(
    advisories: int, withdrawn: int, ecosystems: Sequence[Sequence[Any]], imports: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    return {
        "advisories": advisories,
        "withdrawn": withdrawn,
        "ecosystems": {str(e): int(n) for e, n in ecosystems},
        "imports": [
            {
                "source": source,
                "startedAt": started,
                "seconds": round(seconds, 3),
                **(json.loads(counts) if isinstance(counts, str) else counts),
            }
            for source, started, seconds, counts in imports
        ],
    }


_CANDIDATES = (
    "SELECT a.id, a.aliases, a.summary, a.cvss_level, a.cvss_score, a.cvss_vector, a.rating,"
    " f.ecosystem, f.release, f.name, f.data"
    " FROM vuln_affected f JOIN vuln_advisories a ON a.id = f.advisory"
    " WHERE a.withdrawn IS NULL AND f.ecosystem = ? AND f.name IN ({marks})"
)
_ALIASES = (
    "SELECT DISTINCT mine.advisory, other.id, other.cvss_level, other.cvss_score, other.cvss_vector"
    " FROM vuln_aliases mine JOIN vuln_aliases theirs ON theirs.alias = mine.alias"
    " JOIN vuln_advisories other ON other.id = theirs.advisory"
    " WHERE mine.advisory IN ({marks}) AND other.id <> mine.advisory"
    " AND other.cvss_level IS NOT NULL AND other.withdrawn IS NULL"
)
ECOSYSTEMS = (
    "SELECT ecosystem, count(DISTINCT advisory) FROM vuln_affected GROUP BY ecosystem ORDER BY ecosystem"
)


class SqliteVulnStore(VulnStore):
    """One file on this machine (``vulndb.path``); its calls run in a thread, one at a time."""

    backend = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._guard = threading.Lock()

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened (and the tables made) by the first call that needs it: a
        worker that never touches advisories never creates the file."""
        if self._conn is None:
            import sqlite3

            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")  # another process importing
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, work: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._guard:
                return work(*args)

        return await asyncio.to_thread(locked)

    def _select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._db.execute(sql, tuple(params)).fetchall()

    async def modified_of(self, ids: Sequence[str]) -> dict[str, float]:
        rows = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, modified FROM vuln_advisories WHERE id IN ({marks})"  # noqa: S608
            rows += await self._run(self._select, sql, chunk)
        return {str(i): float(m) for i, m in rows}

    def _replace(self, advisories: Sequence[Advisory]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            ids = [(a.id,) for a in advisories]
            for table, column in (
                ("vuln_affected", "advisory"),
                ("vuln_aliases", "advisory"),
                ("vuln_advisories", "id"),
            ):
                db.executemany(f"DELETE FROM {table} WHERE {column} = ?", ids)  # noqa: S608
            db.executemany(
                "INSERT INTO vuln_advisories VALUES (:id, :modified, :withdrawn, :aliases, :summary,"
                " :cvss_level, :cvss_score, :cvss_vector, :rating)",
                [advisory_row(a) for a in advisories],
            )
            db.executemany(
                "INSERT INTO vuln_affected VALUES (:advisory, :ecosystem, :release, :name, :data)",
                [row for a in advisories for row in affected_rows(a)],
            )
            db.executemany(
                "INSERT INTO vuln_aliases VALUES (:alias, :advisory)",
                [row for a in advisories for row in alias_rows(a)],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def replace(self, advisories: Sequence[Advisory]) -> None:
        if advisories:
            await self._run(self._replace, advisories)

    async def candidates(self, ecosystem: str, names: Sequence[str]) -> list[Candidate]:
        rows = []
        for chunk in _chunks(names):
            sql = _CANDIDATES.format(marks=",".join("?" * len(chunk)))
            rows += await self._run(self._select, sql, [ecosystem, *chunk])
        return [candidate(row) for row in rows]

    async def alias_severities(self, ids: Sequence[str]) -> dict[str, Severity]:
        rows = []
        for chunk in _chunks(ids):
            rows += await self._run(self._select, _ALIASES.format(marks=",".join("?" * len(chunk))), chunk)
        return severities_of(rows)

    def _record(self, source: str, started_at: float, seconds: float, counts: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO vuln_imports (source, started_at, seconds, counts) VALUES (?, ?, ?, ?)",
            (source, started_at, seconds, json.dumps(counts)),
        )

    async def record_import(
        self, source: str, started_at: float, seconds: float, counts: dict[str, Any]
    ) -> None:
        await self._run(self._record, source, started_at, seconds, counts)

    def _revision(self) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM vuln_imports"
            " WHERE json_extract(counts, '$.added') + json_extract(counts, '$.updated') > 0"
        ).fetchone()
        return int(row[0])

    async def revision(self) -> int:
        return int(await self._run(self._revision))

    def _status(self) -> dict[str, Any]:
        if self._conn is None and not self.path.exists():
            return {"revision": 0, **status_of(0, 0, [], [])}  # nothing imported: no file to create
        db = self._db
        total, withdrawn = db.execute("SELECT count(*), count(withdrawn) FROM vuln_advisories").fetchone()
        ecosystems = db.execute(ECOSYSTEMS).fetchall()
        imports = db.execute(
            "SELECT source, started_at, seconds, counts FROM vuln_imports ORDER BY id DESC LIMIT ?",
            (IMPORTS_SHOWN,),
        ).fetchall()
        return {"revision": self._revision(), **status_of(total, withdrawn, ecosystems, imports)}

    async def status(self) -> dict[str, Any]:
        return {"backend": self.backend, **await self._run(self._status)}

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._run(self._close)


def _chunks(items: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
