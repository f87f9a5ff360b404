"""``dockyard vulns REF``: an image's vulnerabilities from its last scan, as a table or ``--json``.

The report is the admin API's (``scan.report``): from a running registry
(``GET /admin/v1/repositories/<name>/vulnerabilities/<reference>``) or read from a
configuration's storage. ``--severity LEVEL`` keeps findings at or above it; the counts line
always covers them all. ``dockyard scan`` prints the same summary after a scan. Exit codes: 0
shown, 1 not scanned or not matched (no advisory database, no SBOM), 4 no such image.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dockyard.vulndb.severity import LEVELS

if TYPE_CHECKING:
    from rich.console import Console

    from dockyard.cli.backends import Backend

STYLES = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "green",
    "none": "dim",
    "unknown": "magenta",
}


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    target_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = sub.add_parser("vulns", help="an image's vulnerabilities from its last scan")
    p.add_argument("reference", help="REPO:TAG or REPO@DIGEST")
    p.add_argument(
        "--severity",
        choices=list(reversed(LEVELS)),
        help="only findings at or above this severity (the counts cover them all)",
    )
    target_options(p)


def _short(digest: str | None) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def counts_line(report: dict[str, Any]) -> str:
    counts = report.get("counts")
    if counts is None:
        return "not matched"
    shown = [f"[{STYLES.get(level, '')}]{level} {n}[/]" for level, n in counts.items() if n]
    return ", ".join(shown) or "no findings"


def print_report(console: Console, report: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(
        f"{report['repository']}@{report['digest']}: {report['state']}, {counts_line(report)}",
        highlight=False,
    )
    for image in report.get("images", []):
        why = image.get("matchError") or image.get("error")
        if why:
            console.print(f"  {image.get('platform') or _short(image.get('digest'))}: {why}", highlight=False)
    if not report.get("findings"):
        return
    several = len({f["image"] for f in report["findings"]}) > 1
    columns = ["SEVERITY", "PACKAGE", "INSTALLED", "FIXED", "ADVISORY", "LAYER"]
    table = Table(*(["PLATFORM", *columns] if several else columns))
    for f in report["findings"]:
        advisory = f["advisory"]
        if f.get("aliases"):
            advisory += f" ({', '.join(f['aliases'])})"
        layer = _short(f.get("layerDigest") or f.get("layer"))
        if f.get("layerIndex"):
            layer = f"{f['layerIndex']}: {layer}"
        row = [
            f"[{STYLES.get(f['severity'], '')}]{f['severity']}[/]",
            f["package"],
            f["installed"],
            f.get("fixed") or "-",
            advisory,
            layer,
        ]
        table.add_row(*([f.get("platform") or "-", *row] if several else row))
    console.print(table)


async def dispatch(
    args: argparse.Namespace,
    backend: Backend,
    console: Console,
    split: Callable[[str], tuple[str, str | None]],
) -> int:
    from dockyard.cli.backends import CommandError

    repository, reference = split(args.reference)
    if reference is None:
        raise CommandError("give REPO:TAG or REPO@DIGEST", 2)
    report = await backend.vulnerabilities(repository, reference, args.severity)
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    else:
        print_report(console, report)
    return 0 if report.get("matched") else 1
