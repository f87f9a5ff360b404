"""``dockyard index rebuild`` and ``dockyard index check``: the listing index (``storage.index``).

The index is derived from the store: ``rebuild`` walks the store and makes the index say the same
(recreating its tables if they were dropped), safe beside serving replicas and idempotent;
``check`` walks and compares without changing anything, and exits 1 when they differ. Both need
``database.dsn``: without a database, listings walk the store and there is no index.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

from dockyard.config import ConfigError, load_config

SHOWN = 20  # differences printed by ``check`` (all of them with --json)


def add_parser(sub: Any) -> None:
    index = sub.add_parser("index", help="the listing index in the database (database.dsn)")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    for name, text in (
        ("rebuild", "walk the store and make the index list what it holds"),
        ("check", "walk the store and report where the index differs (exit 1 if it does)"),
    ):
        p = index_sub.add_parser(name, help=text)
        p.add_argument("--config", metavar="FILE", help="configuration file (storage, database.dsn)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")


async def _run(args: argparse.Namespace) -> int:
    from dockyard.app import create_services
    from dockyard.auth.access import AllowAll

    config = load_config(args.config)
    if not config.database.dsn:
        raise ConfigError(
            "database.dsn (or REGISTRY_DATABASE_DSN) is not set: without a database there is no"
            " index, listings walk the store"
        )
    services = create_services(config, access=AllowAll())
    index = services.registry.index
    assert index is not None  # database.dsn set: the registry was given the index
    try:
        if args.index_command == "rebuild":
            report = await index.rebuild()
            if args.json:
                print(json.dumps(asdict(report)))
            else:
                print(
                    f"index rebuilt in {report.seconds:.1f} s: the store holds {report.repositories}"
                    f" repositories and {report.tags} tags; repositories added {report.repositories_added},"
                    f" dropped {report.repositories_dropped}; tags added {report.tags_added},"
                    f" dropped {report.tags_dropped}"
                )
            return 0
        _, store, diff = await index.difference()
        if args.json:
            counts = {"repositories": len(store.repositories), "tags": len(store.tags)}
            print(json.dumps({**counts, **asdict(diff)}))
        else:
            print(f"the store holds {len(store.repositories)} repositories and {len(store.tags)} tags")
            for label, items in (
                ("repository missing from the index", diff.add_repositories),
                ("repository listed but not stored", diff.drop_repositories),
                ("tag missing from the index", [f"{r}:{t}" for r, t in diff.add_tags]),
                ("tag listed but not stored", [f"{r}:{t}" for r, t in diff.drop_tags]),
            ):
                for item in items[:SHOWN]:
                    print(f"{label}: {item}")
                if len(items) > SHOWN:
                    print(f"{label}: ... {len(items) - SHOWN} more")
            print("index in step with the store" if diff.empty else "index differs: `dockyard index rebuild`")
        return 0 if diff.empty else 1
    finally:
        await services.coordinator.close()


def run(args: argparse.Namespace) -> int:
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "database.dsn needs the PostgreSQL client: pip install 'dockyard[postgres]'"
        ) from None
    try:
        return asyncio.run(_run(args))
    except psycopg.Error as exc:
        print(f"dockyard: database error: {exc}", file=sys.stderr)
        return 1
