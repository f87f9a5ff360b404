"""``python -m bench.compare``: did a change make any figure worse, beyond what the bench's noise
explains? Two sets of ``python -m bench --json`` files, one per build, taken alternately.

Each file's figures are already ratios against distribution measured in the same run (so a
slower machine moves both sides), oriented so that higher is better for dockyard. For every
figure present in all files:

- *change*: the mean of the head's ratios over the mean of the base's;
- *noise*: the larger of 5 % and the base's own spread, ``(max - min) / max`` over its runs;
- *below*: the change is under ``1 - noise``; *all below* when, besides, every head run is under
  every base run.

A spread over two runs says little about a p99 at 64 connections, so the report also applies the
same rule to the base against itself (its runs split in two halves every way) and to the head
against itself. Those counts are what identical code scores: a comparison with as many figures
below is not evidence of a regression. Run at least four of each when the answer matters.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOISE_FLOOR = 0.05

Run = dict[str, float]  # a figure's key -> its ratio in one bench run


@dataclass(frozen=True)
class Row:
    key: str
    base: tuple[float, ...]
    head: tuple[float, ...]
    change: float
    noise: float
    below: bool
    all_below: bool


def load_run(path: Path) -> Run:
    """The ratios of one ``--json`` file, by figure key (figures without a ratio left out)."""
    try:
        doc: Any = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("figures"), list):
        raise ValueError(f"{path}: not a `python -m bench --json` file (no figures list)")
    run: Run = {}
    for fig in doc["figures"]:
        ratio = fig.get("ratio") if isinstance(fig, dict) else None
        if isinstance(ratio, (int, float)) and ratio > 0 and isinstance(fig.get("key"), str):
            run[fig["key"]] = float(ratio)
    return run


def spread(values: Sequence[float]) -> float:
    return (max(values) - min(values)) / max(values)


def compare_figure(key: str, base: Sequence[float], head: Sequence[float]) -> Row:
    change = statistics.fmean(head) / statistics.fmean(base)
    noise = max(NOISE_FLOOR, spread(base))
    below = change < 1 - noise
    return Row(key, tuple(base), tuple(head), change, noise, below, below and max(head) < min(base))


def common_keys(runs: Sequence[Run]) -> list[str]:
    """Keys every run has, in the first run's order."""
    return [k for k in runs[0] if all(k in r for r in runs[1:])]


def compare(base: Sequence[Run], head: Sequence[Run], keys: Sequence[str] | None = None) -> list[Row]:
    keys = common_keys([*base, *head]) if keys is None else keys
    return [compare_figure(k, [r[k] for r in base], [r[k] for r in head]) for k in keys]


def self_comparisons(runs: Sequence[Run], keys: Sequence[str]) -> list[int]:
    """Figures below noise when the runs of one build are compared with each other: every way of
    splitting them into two halves (the first half as base). Empty with fewer than two runs."""
    n = len(runs)
    if n < 2:
        return []
    counts = []
    for first in itertools.combinations(range(n), n // 2):
        rest = [i for i in range(n) if i not in first]
        rows = compare([runs[i] for i in first], [runs[i] for i in rest[: n // 2]], keys)
        counts.append(sum(r.below for r in rows))
    return counts


def report(base: Sequence[Run], head: Sequence[Run]) -> str:
    keys = common_keys([*base, *head])
    rows = compare(base, head, keys)
    out = [
        f"{len(base)} base runs, {len(head)} head runs, {len(keys)} figures in all of them. "
        "Ratios against distribution (higher is better); change = head mean / base mean.",
        "",
        *(
            ["One base run has no spread: the noise is the 5 % floor alone, too little for p99 rows.", ""]
            if len(base) < 2
            else []
        ),
        "| figure | base | head | change | noise | |",
        "|---|---|---|--:|--:|---|",
    ]
    for r in rows:
        mark = "**" if r.below else ""
        flag = "every head run below every base run" if r.all_below else ""
        out.append(
            f"| {r.key} | {' '.join(f'{x:.2f}' for x in r.base)} | {' '.join(f'{x:.2f}' for x in r.head)} "
            f"| {mark}{r.change:.2f}{mark} | {100 * r.noise:.0f} % | {flag} |"
        )
    below = [r for r in rows if r.below]
    out += [
        "",
        f"below noise: {len(below)} of {len(rows)}; of them every head run below every base run: "
        f"{sum(r.all_below for r in below)}",
    ]
    for name, runs in (("base", base), ("head", head)):
        counts = self_comparisons(runs, keys)
        if counts:
            out.append(
                f"{name} against itself, halves of {len(runs) // 2} runs, {len(counts)} splits: "
                f"{', '.join(map(str, counts))} below noise"
            )
    rates = [r.change for r in rows if r.key.endswith(".rps")]
    if rates:
        mean = statistics.geometric_mean(rates)
        out.append(f"request rates ({len(rates)} rows), geometric mean of the changes: {mean:.3f}")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--base", nargs="+", required=True, type=Path, metavar="JSON", help="the base build's runs"
    )
    p.add_argument(
        "--head", nargs="+", required=True, type=Path, metavar="JSON", help="the head build's runs"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        base = [load_run(p) for p in args.base]
        head = [load_run(p) for p in args.head]
    except (OSError, ValueError) as exc:
        print(f"bench.compare: {exc}", file=sys.stderr)
        return 2
    if not common_keys([*base, *head]):
        print("bench.compare: no figure is in every file", file=sys.stderr)
        return 2
    print(report(base, head))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
