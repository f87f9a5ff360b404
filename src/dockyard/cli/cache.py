"""``dockyard cache ls|purge``: what the pull-through cache holds, and evicting from it.

Like the other admin commands it acts on a running registry (``--registry``: the admin API's
``/admin/v1/proxy/cache`` routes) or directly on a configuration's storage (``--config``, which
must have the ``proxy`` section: it says which repositories are cached).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockyard.sizes import human

if TYPE_CHECKING:
    from rich.console import Console

    from dockyard.cli.backends import Backend


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    target_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    cache = sub.add_parser("cache", help="the pull-through cache: list what it holds, evict")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True)
    p = cache_sub.add_parser("ls", help="cached images: upstream, size, last pulled, expiry")
    target_options(p)
    p = cache_sub.add_parser(
        "purge", help="evict the images of cached repositories (globs), or what is expired or over the limit"
    )
    p.add_argument("repositories", nargs="*", help="repository globs, e.g. docker.io/library/** ")
    p.add_argument("--expired", action="store_true", help="run the ttl expiry and the size limit now")
    p.add_argument("--dry-run", action="store_true", help="report what would go, evict nothing")
    target_options(p)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


async def dispatch(args: argparse.Namespace, backend: Backend, console: Console) -> int:
    from rich.table import Table

    from dockyard.cli.backends import CommandError

    if args.cache_command == "ls":
        data = await backend.cache_listing()
        if args.json:
            print_json(data)
            return 0
        table = Table("REPOSITORY", "TAGS", "DIGEST", "SIZE", "LAST PULLED", "EXPIRES", "UPSTREAM")
        for i in data["images"]:
            expires = "expired" if i["expired"] else _when(i["expiresAt"]) if i["expiresAt"] else "never"
            table.add_row(
                i["repository"],
                ", ".join(i["tags"]) or "-",
                i["digest"].split(":", 1)[-1][:12],
                human(i["bytes"]),
                _when(i["lastPulled"]),
                expires,
                i["upstream"],
            )
        console.print(table)
        limit = f" of {human(data['maxBytes'])}" if data["maxBytes"] is not None else ""
        console.print(f"cache: {human(data['cacheBytes'])}{limit} in {len(data['images'])} images")
        return 0
    if bool(args.repositories) == args.expired:
        raise CommandError("name repositories (globs) to purge, or give --expired", 2)
    report = await backend.cache_purge(args.repositories or None, dry_run=args.dry_run)
    if args.json:
        print_json(report)
        return 0
    verb = "would evict" if report["dryRun"] else "evicted"
    for e in report["evicted"]:
        console.print(f"{verb} {e['repository']}@{e['digest']} ({e['reason']})", highlight=False)
    for held in report["skippedFilling"]:
        console.print(f"kept {held}: a blob of it is being fetched", highlight=False)
    freed = f", freed {human(report['bytesFreed'])}" if not report["dryRun"] else ""
    console.print(f"{verb} {len(report['evicted'])} images{freed}")
    return 0


def print_json(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2))
