"""Versioned schema migrations for the PostgreSQL coordinator.

Migrations are ordered SQL files in ``coord/migrations`` (``NNNN_name.sql``), applied in order,
each in its own transaction together with its row in ``schema_migrations``. The whole run holds
one advisory lock, so replicas starting together apply each migration exactly once; running it
again applies nothing (idempotent). ``dockyard db migrate`` runs it by hand; the coordinator runs it
when it first connects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

MIGRATION_LOCK = 0x646F636B79617264  # "dockyard": one advisory lock key for the whole run
_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped in the package, by version."""
    found = []
    for entry in (resources.files("dockyard.coord") / "migrations").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


async def migrate(conn: psycopg.AsyncConnection[object]) -> list[int]:
    """Apply the missing migrations on an autocommit connection; returns the versions applied."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}  # type: ignore[index]
        for migration in migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


async def current_version(conn: psycopg.AsyncConnection[object]) -> int:
    cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cursor.fetchone()
    if row is None or not row[0]:  # type: ignore[index]
        return 0
    cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0  # type: ignore[index]
