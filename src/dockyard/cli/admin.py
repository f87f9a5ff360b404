"""Admin commands: ls, tags, inspect, rm, du, gc, prune, cache (``cli.cache``), scan (``cli.scan``),
vulns (``cli.vulns``).

Each works against a running registry (``--registry URL``, credentials from ``--username`` /
``--password`` or ``DOCKYARD_USERNAME`` / ``DOCKYARD_PASSWORD``) or directly on the storage of a
configuration file (``--config FILE``) or root directory (``--root DIR``). Tables for people,
``--json`` for scripts. Exit codes: 0 done, 1 failed, 2 bad usage, 4 not found, 5 refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockyard.cli import cache, scan, vulns
from dockyard.config import ConfigError, load_config, parse_config
from dockyard.sizes import human

if TYPE_CHECKING:  # imported when a command runs, so `dockyard serve` never loads them
    from rich.console import Console

    from dockyard.cli.backends import Backend

COMMANDS = ("ls", "tags", "inspect", "rm", "du", "gc", "prune", "cache", "scan", "vulns")
USAGE = 2


def _target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where")
    where.add_argument(
        "--registry",
        metavar="URL",
        default=os.environ.get("DOCKYARD_REGISTRY"),
        help="a running registry (default $DOCKYARD_REGISTRY or http://127.0.0.1:5000)",
    )
    where.add_argument(
        "--config", metavar="FILE", help="act directly on the storage this configuration names"
    )
    where.add_argument("--root", metavar="DIR", help="act directly on a storage root directory")
    where.add_argument("--username", default=os.environ.get("DOCKYARD_USERNAME"))
    where.add_argument("--password", default=os.environ.get("DOCKYARD_PASSWORD"))
    where.add_argument("--ca", metavar="FILE", help="CA bundle to verify the registry's certificate")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ls", help="list repositories")
    _target_options(p)
    p = sub.add_parser("tags", help="tags of a repository with digest, size, platforms, push time")
    p.add_argument("repository")
    p.add_argument("--full-digest", action="store_true", help="show whole digests")
    _target_options(p)
    p = sub.add_parser("inspect", help="platforms, layers, config, labels and referrers of an image")
    p.add_argument("reference", help="REPO:TAG or REPO@DIGEST")
    _target_options(p)
    p = sub.add_parser("rm", help="delete a tag (REPO:TAG), a manifest (REPO@DIGEST) or a repository (REPO)")
    p.add_argument("reference")
    p.add_argument("--force", action="store_true", help="delete a manifest even if an index lists it")
    _target_options(p)
    p = sub.add_parser("du", help="bytes per repository: total, unique to it, shared")
    p.add_argument("repositories", nargs="*")
    _target_options(p)
    p = sub.add_parser("gc", help="collect garbage: free blobs nothing references")
    p.add_argument("--dry-run", action="store_true", help="report what would go, delete nothing")
    p.add_argument("--delete-untagged", action="store_true", help="also delete manifests no tag reaches")
    _target_options(p)
    p = sub.add_parser("prune", help="delete tags by a retention policy")
    p.add_argument("repositories", nargs="?", default="**", help="repository glob (default: all)")
    p.add_argument("--keep", type=int, metavar="N", help="keep the N most recently pushed tags")
    p.add_argument("--older-than", metavar="DURATION", help="only delete tags pushed longer ago (e.g. 30d)")
    p.add_argument("--match", metavar="REGEX", help="only consider tags matching")
    p.add_argument("--keep-match", metavar="REGEX", help="never delete tags matching")
    p.add_argument("--untagged", action="store_true", help="also delete untagged manifests")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--force", action="store_true", help="allow deleting every tag of a repository")
    _target_options(p)
    cache.add_parser(sub, _target_options)
    scan.add_parser(sub, _target_options)
    vulns.add_parser(sub, _target_options)


def _backend(args: argparse.Namespace, console: Console) -> Backend:
    from dockyard.cli.backends import HTTPBackend, StoreBackend

    if args.root or args.config:
        if args.root:
            config = parse_config({"storage": {"filesystem": {"rootdirectory": args.root}}}, "--root")
        else:
            config = load_config(args.config)
        progress = None
        if args.command == "gc" and not args.json and console.is_terminal:
            progress = _progress_callback(console)
        return StoreBackend(config, progress)
    url = args.registry or "http://127.0.0.1:5000"
    return HTTPBackend(url, args.username, args.password, verify=args.ca or True)


def _progress_callback(console: Console) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}
    bar.start()

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=max(total, 1))
        bar.update(tasks[phase], completed=done, total=max(total, 1))
        if all(bar.tasks[t].finished for t in tasks.values()) and phase == "blobs" and done >= total:
            bar.stop()

    return update


def _split(reference: str) -> tuple[str, str | None]:
    if "@" in reference:
        repo, _, digest = reference.partition("@")
        return repo, digest
    head, _, tail = reference.rpartition(":")
    if head and "/" not in tail:
        return head, tail
    return reference, None


def _short(digest: str, full: bool) -> str:
    return digest if full else digest.split(":", 1)[-1][:12]


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


async def _run(args: argparse.Namespace, console: Console) -> int:
    backend = _backend(args, console)
    try:
        return await _dispatch(args, backend, console)
    finally:
        await backend.close()


def _emit(args: argparse.Namespace, console: Console, data: Any) -> bool:
    if args.json:
        print(json.dumps(data, indent=2))
    return bool(args.json)


async def _dispatch(args: argparse.Namespace, backend: Backend, console: Console) -> int:
    from rich.table import Table

    command = args.command
    if command == "cache":
        return await cache.dispatch(args, backend, console)
    if command == "scan":
        return await scan.dispatch(args, backend, console, _split)
    if command == "vulns":
        return await vulns.dispatch(args, backend, console, _split)
    if command == "ls":
        names = await backend.repositories()
        if not _emit(args, console, names):
            for name in names:
                console.print(name, highlight=False)
        return 0
    if command == "tags":
        data = await backend.tags(args.repository)
        if not _emit(args, console, data):
            table = Table("TAG", "DIGEST", "SIZE", "PLATFORMS", "PUSHED", title=args.repository)
            for t in data["tags"]:
                table.add_row(
                    t["tag"],
                    _short(t["digest"], args.full_digest),
                    human(t["size"]),
                    ", ".join(t["platforms"]) or "-",
                    _when(t["pushed"]),
                )
            console.print(table)
        return 0
    if command == "inspect":
        repo, ref = _split(args.reference)
        data = await backend.inspect(repo, ref or "latest")
        if not _emit(args, console, data):
            _print_inspect(console, data)
        return 0
    if command == "rm":
        repo, ref = _split(args.reference)
        if ref is None:
            await backend.delete_repository(repo)
        else:
            await backend.delete(repo, ref, force=args.force)
        if not _emit(args, console, {"deleted": args.reference}):
            console.print(f"deleted {args.reference}")
        return 0
    if command == "du":
        data = await backend.usage(args.repositories)
        if not _emit(args, console, data):
            table = Table("REPOSITORY", "TOTAL", "UNIQUE", "SHARED", "BLOBS")
            for u in sorted(data["repositories"], key=lambda u: -u["total"]):
                table.add_row(
                    u["repository"],
                    human(u["total"]),
                    human(u["unique"]),
                    human(u["shared"]),
                    str(u["blobs"]),
                )
            console.print(table)
            console.print(f"stored: {human(data['stored'])} in {data['blobs']} blobs")
            for quota in data.get("quotas") or []:
                share = quota["used"] / quota["limit"] * 100 if quota["limit"] else 100.0
                used, limit = human(quota["used"]), human(quota["limit"])
                console.print(
                    f"quota {quota['repositories']}: {used} of {limit} ({share:.0f}%)", highlight=False
                )
        return 0
    if command == "gc":
        report = await backend.gc(dry_run=args.dry_run, delete_untagged=args.delete_untagged)
        if not _emit(args, console, report):
            verb = "would free" if report["dry_run"] else "freed"
            console.print(
                f"{verb} {human(report['bytes_freed'])}: {len(report['blobs_deleted'])} blobs, "
                f"{len(report['manifests_deleted'])} manifests "
                f"({report['blobs_marked']} of {report['blobs_total']} blobs in use, "
                f"{report['kept_recent']} kept as recent) in {report['seconds']}s"
            )
            if report.get("missing"):
                console.print(f"referenced but not stored (sparse pushes): {len(report['missing'])}")
        return 0
    if command == "prune":
        policy: dict[str, Any] = {"repositories": args.repositories, "untagged": args.untagged}
        for key, value in (
            ("keep", args.keep),
            ("olderthan", args.older_than),
            ("match", args.match),
            ("keepmatch", args.keep_match),
        ):
            if value is not None:
                policy[key] = value
        report = await backend.retention([policy], dry_run=args.dry_run, force=args.force)
        if not _emit(args, console, report):
            table = Table(
                "REPOSITORY",
                "TAG",
                "DIGEST",
                "PUSHED",
                "RULE",
                title="would delete" if report["dry_run"] else "deleted",
            )
            for d in report["deleted"]:
                table.add_row(
                    d["repository"], d["tag"], _short(d["digest"], False), _when(d["pushed"]), d["rule"]
                )
            if report["deleted"]:
                console.print(table)
            else:
                console.print("nothing to delete")
            for refused in report["refused"]:
                console.print(f"[bold red]refused[/] {refused['repository']}: {refused['reason']}")
            if report["untagged_deleted"]:
                console.print(f"untagged manifests deleted: {len(report['untagged_deleted'])}")
        return 5 if report["refused"] else 0
    raise ValueError(f"unknown command {command}")  # pragma: no cover - argparse enforces the choice


def _print_inspect(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"[bold]{data['repository']}@{data['digest']}[/]  {data['mediaType']}", highlight=False)
    console.print(
        f"tags: {', '.join(data['tags']) or '-'}   size: {human(data['size'])}   "
        f"platforms: {', '.join(data['platforms']) or '-'}",
        highlight=False,
    )
    images = data.get("manifests") or [data]
    for image in images:
        if "platform" in image:
            gone = "  [yellow]missing[/] (not in this repository)" if image.get("missing") else ""
            console.print(f"\n[bold]{image['platform']}[/] {image['digest']}{gone}", highlight=False)
        if image.get("created"):
            console.print(f"created: {image['created']}")
        for key in ("entrypoint", "cmd"):
            if image.get(key):
                console.print(f"{key}: {image[key]}", highlight=False)
        for label, value in (image.get("labels") or {}).items():
            console.print(f"label {label}={value}", highlight=False)
        layers = Table("LAYER", "SIZE", "MEDIA TYPE")
        for layer in image.get("layers") or []:
            digest = _short(layer["digest"] or "", False) + (" (missing)" if layer.get("missing") else "")
            layers.add_row(digest, human(layer["size"] or 0), layer["mediaType"] or "")
        if image.get("layers"):
            console.print(layers)
    if data.get("missing"):
        console.print(f"missing (not in this repository): {', '.join(data['missing'])}", highlight=False)
    if data["referrers"]:
        refs = Table("REFERRER", "ARTIFACT TYPE", "SIZE")
        for r in data["referrers"]:
            refs.add_row(_short(r["digest"], False), r.get("artifactType", "-"), human(r["size"]))
        console.print(refs)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dockyard.cli.backends import CommandError

    # Piped output gets a wide page so digests and rules are never wrapped mid-value.
    console = Console(width=None if sys.stdout.isatty() else 240)
    try:
        return asyncio.run(_run(args, console))
    except CommandError as exc:
        print(f"dockyard {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # output piped into e.g. head, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        print(f"dockyard {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except ValueError as exc:  # invalid policy values (regex, duration)
        print(f"dockyard {args.command}: {exc}", file=sys.stderr)
        return USAGE
