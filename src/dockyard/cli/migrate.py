"""``dockyard migrate SRC DST``: copy a registry between storage configurations.

SRC and DST each name a storage, in one of three ways:

- a configuration file (its ``storage`` section, environment overrides included, as ``serve``
  reads it);
- ``filesystem:PATH`` (or a bare directory path): ``storage.filesystem.rootdirectory``;
- ``s3://BUCKET/ROOT?key=value&...``: ``storage.s3`` with ``bucket``, ``rootdirectory`` and
  distribution's other keys as query parameters (``regionendpoint``, ``region``, ``secure``...);
  credentials from ``accesskey``/``secretkey`` or the standard AWS environment and files.

The copy verifies every blob's digest while streaming it, is resumable (run it again after an
interruption: what is at DST already is skipped), and writes blobs, then links, then tags, so
DST is consistent at every moment (``storage.migrate``). Run it with the source registry stopped
or read-only (``storage.maintenance.readonly``), or run it again after the last push to pick up
what changed. A progress bar goes to stderr on a terminal; the summary (``--json`` for scripts)
to stdout. Exit codes: 0 done, 1 something was not copied, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from dockyard.config import ConfigError, load_config, parse_config
from dockyard.sizes import human

if TYPE_CHECKING:
    from rich.console import Console

    from dockyard.storage.migrate import MigrationReport, Progress

USAGE = 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser("migrate", help="copy a registry to another storage (filesystem, S3), resumably")
    p.add_argument("src", help="config file, filesystem:PATH or s3://BUCKET/ROOT?regionendpoint=...")
    p.add_argument("dst", help="the same forms as SRC")
    p.add_argument("--jobs", type=int, default=4, help="blobs copied at once (default 4)")
    p.add_argument(
        "--verify-existing",
        action="store_true",
        help="hash the blobs DST has already instead of trusting their presence and size",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def storage_of(spec: str) -> tuple[str, dict[str, Any]]:
    """The driver name and parameters a SRC or DST argument names."""
    if spec.startswith("s3://"):
        url = urlsplit(spec)
        if not url.netloc:
            raise ConfigError(f"{spec}: no bucket (s3://BUCKET/ROOT)")
        params: dict[str, Any] = {
            k: yaml.safe_load(v) for k, v in parse_qsl(url.query, keep_blank_values=True)
        }
        params.update(bucket=url.netloc, rootdirectory=url.path.rstrip("/"))
        config = parse_config({"storage": {"s3": params}}, spec)
    elif spec.startswith("filesystem:") or os.path.isdir(spec):
        root = spec.removeprefix("filesystem:")
        if not root:
            raise ConfigError(f"{spec}: no directory (filesystem:PATH)")
        config = parse_config({"storage": {"filesystem": {"rootdirectory": root}}}, spec)
    elif os.path.isfile(spec):
        config = load_config(spec)
    else:
        raise ConfigError(
            f"{spec}: neither a configuration file, filesystem:PATH, a directory nor s3://BUCKET/ROOT"
        )
    name, driver_params = config.storage.driver()
    if name == "inmemory":
        raise ConfigError(f"{spec}: the inmemory driver lives in one process; nothing to migrate")
    return name, driver_params


def _progress(console: Console) -> tuple[Progress, Any]:
    """A byte bar for the blobs and a count bar for links and tags, on ``console`` (stderr)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as Bars

    bar = Bars(
        TextColumn("{task.description:>6}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    files = Bars(TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn(), console=console)
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            owner = bar if phase == "blobs" else files
            if phase == "links":
                files.start()
            tasks[phase] = owner.add_task(phase, total=total)
        (bar if phase == "blobs" else files).update(tasks[phase], completed=done, total=total)

    bar.start()

    def stop() -> None:
        bar.stop()
        files.stop()

    return update, stop


def _summary(console: Console, report: MigrationReport, src: str, dst: str) -> None:
    console.print(f"[bold]migrated[/bold] {src} -> {dst} in {report.seconds:.1f} s")
    console.print(
        f"  blobs: {report.blobs} at the source, {report.blobs_copied} copied and verified "
        f"({human(report.bytes_copied)}), {report.blobs_present} already there"
    )
    console.print(
        f"  links: {report.files} ({report.tags} tags), {report.files_copied} written, "
        f"{report.files_present} already there"
    )
    for failure in report.failed:
        console.print(f"  [red]not copied[/red]: {failure}")


async def _migrate(args: argparse.Namespace, progress: Progress | None) -> MigrationReport:
    from dockyard.storage.drivers import create_driver
    from dockyard.storage.migrate import Migration

    (src_name, src_params), (dst_name, dst_params) = storage_of(args.src), storage_of(args.dst)
    if (src_name, src_params) == (dst_name, dst_params):
        raise ConfigError("SRC and DST are the same storage")
    try:
        src, dst = create_driver(src_name, src_params), create_driver(dst_name, dst_params)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    migration = Migration(src, dst, jobs=args.jobs, verify_existing=args.verify_existing, progress=progress)
    return await migration.run()


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.jobs < 1:
        print("dockyard migrate: --jobs must be at least 1", file=sys.stderr)
        return USAGE
    errors = Console(stderr=True)
    progress, stop = _progress(errors) if errors.is_terminal and not args.json else (None, None)
    try:
        report = asyncio.run(_migrate(args, progress))
    except ConfigError as exc:
        print(f"dockyard migrate: {exc}", file=sys.stderr)
        return USAGE
    except Exception as exc:  # the store failed: what was copied stays, a new run resumes
        print(
            f"dockyard migrate: stopped: {type(exc).__name__}: {exc} (run it again to resume)",
            file=sys.stderr,
        )
        return 1
    finally:
        if stop is not None:
            stop()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _summary(Console(width=None if sys.stdout.isatty() else 240), report, args.src, args.dst)
    return 1 if report.failed else 0
