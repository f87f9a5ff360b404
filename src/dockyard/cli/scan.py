"""``dockyard scan REPO:TAG``: make (or find) the SBOMs of an image now.

Against a running registry (``--registry``) it queues the image through ``POST /admin/v1/scans``
and, with ``--wait``, follows ``GET /admin/v1/scans`` until the registry's scanner has done it.
On a configuration's storage (``--config``/``--root``) it scans in this process, under the same
per-image lock the registry's scanners take, and prints the result. A finished scan is followed
by the image's vulnerabilities (``dockyard vulns``'s summary and table; in ``--json`` under
``vulnerabilities``) when it was matched against an advisory database.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from dockyard.cli.backends import Backend


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    target_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = sub.add_parser("scan", help="make or find the SBOMs of an image (each platform of an index)")
    p.add_argument("reference", help="REPO:TAG or REPO@DIGEST")
    p.add_argument(
        "--wait", action="store_true", help="with --registry: wait until the registry has scanned it"
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds --wait waits at most")
    target_options(p)


def print_result(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    result = data.get("result") or {}
    if data.get("queued") and not result:
        console.print(f"queued: {data['repository']}@{data['digest']}", highlight=False)
        return
    table = Table("PLATFORM", "IMAGE", "STATE", "SBOMS", "PACKAGES", "SECONDS")
    for image in result.get("images", []):
        sboms = ", ".join(s["artifactType"] for s in image.get("sboms", []))
        table.add_row(
            image.get("platform") or "-",
            image["digest"].split(":", 1)[-1][:12],
            image["state"],
            sboms or image.get("error") or image.get("reason") or "-",
            str(image.get("packages", "-")),
            str(image.get("seconds", "-")),
        )
    console.print(f"{data['repository']}@{data['digest']}: {result.get('state', 'unknown')}", highlight=False)
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
    data = await backend.scan(repository, reference, wait_seconds=args.timeout if args.wait else None)
    result = data.get("result") or {}
    report = None
    if any(image.get("findings") is not None for image in result.get("images", [])):
        report = await backend.vulnerabilities(repository, data["digest"], None)
    if args.json:
        import json

        print(json.dumps({**data, "vulnerabilities": report} if report else data, indent=2))
    else:
        print_result(console, data)
        if report is not None:
            from dockyard.cli.vulns import print_report

            print_report(console, report)
    return 1 if result.get("state") == "failed" else 0
