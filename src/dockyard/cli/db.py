"""``dockyard db migrate``: bring the coordinator's PostgreSQL schema up to date.

The coordinator also migrates on its first connection; this command does it ahead of a rollout
(one replica, or a job) and prints what it applied. It is safe to run beside serving replicas:
migrations run under an advisory lock, each in its own transaction, and are skipped once applied.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from dockyard.config import ConfigError, load_config


def add_parser(sub: Any) -> None:
    db = sub.add_parser("db", help="the coordinator's database (database.dsn)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser("migrate", help="apply the schema migrations not applied yet")
    migrate.add_argument("--config", metavar="FILE", help="configuration file (for database.dsn)")


async def _migrate(dsn: str) -> tuple[list[int], int]:
    import psycopg

    from dockyard.coord.schema import current_version, migrate

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        applied = await migrate(conn)
        return applied, await current_version(conn)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not config.database.dsn:
        raise ConfigError("database.dsn (or REGISTRY_DATABASE_DSN) is not set: nothing to migrate")
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "database.dsn needs the PostgreSQL client: pip install 'dockyard[postgres]'"
        ) from None
    try:
        applied, version = asyncio.run(_migrate(config.database.dsn))
    except psycopg.Error as exc:
        print(f"dockyard: database error: {exc}", file=sys.stderr)
        return 1
    done = ", ".join(str(v) for v in applied) if applied else "none"
    print(f"migrations applied: {done}; schema version {version}")
    return 0
