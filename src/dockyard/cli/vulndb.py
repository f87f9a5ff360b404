"""``dockyard vulndb``: the advisory database (``dockyard.vulndb``).

- ``update [--from FILE|URL ...]``: import OSV exports; without ``--from``, download osv.dev's
  ``all.zip`` of every ecosystem in ``vulndb.ecosystems`` (air-gapped sites copy those files in
  and name them). Re-running imports only what changed.
- ``status``: how many advisories per ecosystem, and the latest imports' times and counts.
- ``match SBOM``: the findings of a CycloneDX JSON SBOM against the database (what a scan does
  with the SBOM it made), as a table or ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from dockyard.vulndb.store import VulnStore


def add_parser(sub: Any) -> None:
    vulndb = sub.add_parser("vulndb", help="the advisory database (OSV) scans match against")
    vulndb_sub = vulndb.add_subparsers(dest="vulndb_command", required=True)
    update = vulndb_sub.add_parser("update", help="import OSV advisories (osv.dev all.zip exports)")
    update.add_argument(
        "--from",
        dest="sources",
        action="append",
        metavar="FILE|URL",
        help="an all.zip (or unpacked folder, or URL) to import; repeatable (default: download"
        " vulndb.ecosystems from vulndb.baseurl)",
    )
    status = vulndb_sub.add_parser("status", help="advisory counts and the latest imports")
    match = vulndb_sub.add_parser("match", help="match a CycloneDX JSON SBOM against the advisories")
    match.add_argument("sbom", help="the SBOM file (CycloneDX JSON, as Syft writes it)")
    for p in (update, status, match):
        p.add_argument("--config", metavar="FILE", help="configuration file (vulndb, database.dsn)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")


async def _open(config: Config) -> tuple[VulnStore, Any]:
    from dockyard.vulndb.setup import require_store

    coordinator = None
    if config.database.dsn:
        from dockyard.coord.postgres import PostgresCoordinator

        coordinator = PostgresCoordinator(config.database.dsn)
    return require_store(config, coordinator), coordinator


async def _update(store: VulnStore, config: Config, args: argparse.Namespace) -> int:
    from dockyard.vulndb.importer import SourceError, default_urls, import_source

    sources = args.sources or default_urls(config.vulndb.baseurl, config.vulndb.ecosystems)
    failed = 0
    for source in sources:
        try:
            report = await import_source(store, source)
        except SourceError as exc:
            print(f"dockyard: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(report.to_json()))
        else:
            print(
                f"{report.source}: {report.records} records in {report.seconds:.1f} s:"
                f" {report.added} added, {report.updated} updated, {report.unchanged} unchanged,"
                f" {report.withdrawn} withdrawn, {report.invalid} invalid"
            )
    return 1 if failed else 0


def _print_status(status: dict[str, Any]) -> None:
    print(f"{status['advisories']} advisories ({status['withdrawn']} withdrawn) in {status['backend']}")
    for ecosystem, count in status["ecosystems"].items():
        print(f"  {ecosystem}: {count}")
    for item in status["imports"]:
        print(
            f"import of {item['source']} at {item['startedAt']:.0f}: {item['records']} records in"
            f" {item['seconds']:.1f} s ({item['added']} added, {item['updated']} updated)"
        )


async def _match(store: VulnStore, args: argparse.Namespace) -> int:
    from dockyard.vulndb.match import match, summarize

    try:
        sbom = json.loads(await asyncio.to_thread(Path(args.sbom).read_bytes))
    except (OSError, ValueError) as exc:
        print(f"dockyard: {args.sbom}: not a readable JSON SBOM: {exc}", file=sys.stderr)
        return 1
    findings = await match(store, sbom)
    if args.json:
        print(json.dumps({"counts": summarize(findings), "findings": [f.to_json() for f in findings]}))
        return 0
    for f in findings:
        fixed = f.fixed or "-"
        print(f"{f.severity.level:<8} {f.advisory:<24} {f.package} {f.installed} (fixed: {fixed})")
    counts = summarize(findings)
    print(", ".join(f"{level} {n}" for level, n in counts.items() if n) or "no findings")
    return 0


async def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store, coordinator = await _open(config)
    try:
        if args.vulndb_command == "update":
            return await _update(store, config, args)
        if args.vulndb_command == "match":
            return await _match(store, args)
        status = await store.status()
        if args.json:
            print(json.dumps(status))
        else:
            _print_status(status)
        return 0
    finally:
        await store.close()
        if coordinator is not None:
            await coordinator.close()


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except ConfigError:
        raise
    except Exception as exc:  # the database refused or went away: say so, no traceback
        if type(exc).__module__.startswith(("psycopg", "sqlite3", "dockyard.errors")):
            print(f"dockyard: database error: {exc}", file=sys.stderr)
            return 1
        raise
