"""What ``python -m bench`` prints and writes at the end: the tables by group, CPU per phase, the
README table and the JSON document (``--json``) that ``bench.compare`` reads."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import figures
from bench.model import Results, fmt, markdown_table
from bench.servers import DISTRIBUTION, DOCKYARD, NAMES, distribution_version

# Per phase, per server, one record per round: server/client CPU, work done, peak RSS.
PhaseCpu = dict[str, dict[str, list[dict[str, float]]]]


def slot_labels(args: argparse.Namespace) -> tuple[tuple[str, str], tuple[str, str]]:
    """The tables' column labels and short names of the two slots (``--baseline``)."""
    if args.baseline == "distribution":
        return ("dockyard", "distribution 2.8.2"), ("dockyard", "distribution")
    first = "dockyard --observe" if args.observe else "dockyard"
    second = "dockyard, plain" if args.baseline == "dockyard" else "dockyard, metrics only"
    return (first, second), (first, second)


def phase_table(phase_cpu: PhaseCpu) -> str:
    lines = [
        "| Phase | server CPU s dockyard | server CPU s distribution | work units dockyard / distribution "
        "| server CPU per unit: distribution/dockyard (>1 = dockyard cheaper) "
        "| client CPU s (while dockyard / distribution ran) | phase peak RSS MiB dockyard / distribution |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for phase, per in phase_cpu.items():

        def med(name: str, key: str, per: dict[str, list[dict[str, float]]] = per) -> float | None:
            vals = [r[key] for r in per[name] if key in r]
            return statistics.median(vals) if vals else None

        ratios = []
        for a, b in zip(per[DOCKYARD], per[DISTRIBUTION], strict=False):
            if a["work"] and b["work"] and a["server_cpu"] > 0:
                ratios.append((b["server_cpu"] / b["work"]) / (a["server_cpu"] / a["work"]))
        ratio = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "n/a"
        lines.append(
            f"| {phase} | {fmt(med(DOCKYARD, 'server_cpu'))} | {fmt(med(DISTRIBUTION, 'server_cpu'))} "
            f"| {fmt(med(DOCKYARD, 'work'))} / {fmt(med(DISTRIBUTION, 'work'))} | {ratio} "
            f"| {fmt(med(DOCKYARD, 'client_cpu'))} / {fmt(med(DISTRIBUTION, 'client_cpu'))} "
            f"| {fmt(med(DOCKYARD, 'peak_rss_mib'))} / {fmt(med(DISTRIBUTION, 'peak_rss_mib'))} |"
        )
    return "\n".join(lines)


def report(
    results: Results,
    phase_cpu: PhaseCpu,
    p: figures.Params,
    args: argparse.Namespace,
    wall: float,
    dist_bin: str,
    info: dict[str, Any],
) -> None:
    groups: dict[str, list[str]] = {}
    for key, fig in results.figures.items():
        groups.setdefault(fig.group, []).append(key)
    columns, names = slot_labels(args)
    print()
    print(
        f"# {names[0]} vs {names[1]} ({'quick' if p.quick else 'full'} run, {p.rounds} rounds, "
        f"wall {wall:.0f}s; medians over rounds; ↓ = lower is better)"
    )
    if args.baseline != "distribution":
        print(
            f"\n--baseline {args.baseline}: the columns and rows named distribution below are "
            f"{names[1]}, in distribution's slot"
        )
    for group, keys in groups.items():
        print(f"\n## {group}\n")
        print(markdown_table(results, keys, columns, names))
        rates = [r for k in keys if k.endswith(".rps") and (r := results.summary(k).ratio) is not None]
        if rates:
            mean = statistics.geometric_mean(rates)
            print(f"\nthroughput ratios' geometric mean: {mean:.3f} over {len(rates)} figures")
    print("\n## server and client CPU per phase (medians over rounds)\n")
    print(phase_table(phase_cpu))
    for err in info.get("round_errors", []):
        print(f"\nROUND FAILED: {err}")
    cgroups = info.get("memory_cgroups")
    print(
        f"\nmemory charged (mem.*.charged): each server in a memory cgroup of its own, {cgroups}"
        if cgroups
        else "\nno memory cgroup could be created (not root?): no mem.*.charged rows"
    )
    if args.observe:
        print(
            "\nobserved (--observe): metrics on and one webhook endpoint, "
            f"{'both registries' if args.baseline == 'distribution' else 'dockyard only'}; "
            f"events received: {info.get('webhook_events_received', 0):,}; after each step the "
            "deliveries it set off were waited out before the next step (server CPU meanwhile:"
        )
        for name in NAMES:
            rows = [r for per in phase_cpu.values() for r in per.get(name, [])]
            steps, drain = sum(r["server_cpu"] for r in rows), sum(r["drain_cpu"] for r in rows)
            waited = sum(r["drain_wall"] for r in rows)
            print(f"  {name}: {drain:.1f} s after its steps, {waited:.0f} s waited; {steps:.1f} s in them)")
    failures = [(k, f) for k in results.figures for f in results.summary(k).failures]
    if failures:
        print("\n## failed measurements (⚠; not included in medians)\n")
        for key, failure in failures:
            print(f"- {key}: {failure}")
    headline = [
        k for k in results.figures if not k.startswith("req.") or (".c16." in k and not k.endswith(".p50"))
    ]
    print("\n## README table\n")
    print(markdown_table(results, headline, columns, names))
    if args.json:
        doc = {
            "mode": "quick" if p.quick else "full",
            "params": asdict(p),
            "wall_seconds": wall,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version},
            "distribution": distribution_version(dist_bin),
            "dockyard": info.get("dockyard_binary"),  # the executable measured (--dockyard)
            "dockyard_workers": args.workers,
            "configurations": info.get("configurations"),
            "dockyard_fsync": not args.no_fsync,
            "memory_cgroups": info.get("memory_cgroups"),
            "observe": args.observe,
            "baseline": args.baseline,
            "storage": info.get("storage"),
            "figures": results.to_json(),
            "phases": phase_cpu,
            "round_errors": info.get("round_errors", []),
            "server_log_tails": {n: info.get(n, {}).get("log_tail", "") for n in NAMES},
        }
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str))
        print(f"\nwrote {args.json}")
