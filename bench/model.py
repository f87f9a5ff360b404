"""Figures, per-round samples and the paired dockyard/distribution ratios."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.servers import DISTRIBUTION, DOCKYARD, NAMES


@dataclass(frozen=True)
class Figure:
    key: str
    group: str
    label: str
    unit: str
    higher_better: bool


@dataclass
class Sample:
    round: int
    value: float | None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    figure: Figure
    medians: dict[str, float | None]
    ratio: float | None
    ratio_min: float | None
    ratio_max: float | None
    ratios: list[float]
    failures: list[str]


class Results:
    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}
        self.samples: dict[str, dict[str, list[Sample]]] = {}

    def declare(self, fig: Figure) -> Figure:
        self.figures.setdefault(fig.key, fig)
        self.samples.setdefault(fig.key, {n: [] for n in NAMES})
        return self.figures[fig.key]

    def add(self, fig: Figure, server: str, sample: Sample) -> None:
        self.declare(fig)
        self.samples[fig.key][server].append(sample)

    def summary(self, key: str) -> Summary:
        fig = self.figures[key]
        per = self.samples[key]
        medians: dict[str, float | None] = {}
        for name in NAMES:
            values = [s.value for s in per[name] if s.value is not None and s.error is None]
            medians[name] = statistics.median(values) if values else None
        ratios = []
        failures = [f"{n} round {s.round}: {s.error}" for n in NAMES for s in per[n] if s.error]
        by_round = {n: {s.round: s for s in per[n]} for n in NAMES}
        for rnd, a in sorted(by_round[DOCKYARD].items()):
            b = by_round[DISTRIBUTION].get(rnd)
            if b is None or a.error or b.error or a.value is None or b.value is None:
                continue
            num, den = (a.value, b.value) if fig.higher_better else (b.value, a.value)
            if den > 0:
                ratios.append(num / den)
        return Summary(
            figure=fig,
            medians=medians,
            ratio=statistics.median(ratios) if ratios else None,
            ratio_min=min(ratios) if ratios else None,
            ratio_max=max(ratios) if ratios else None,
            ratios=ratios,
            failures=failures,
        )

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for key in self.figures:
            s = self.summary(key)
            out.append(
                {
                    **asdict(s.figure),
                    "median": s.medians,
                    "ratio": s.ratio,
                    "ratio_definition": "dockyard/distribution"
                    if s.figure.higher_better
                    else "distribution/dockyard",
                    "ratio_min": s.ratio_min,
                    "ratio_max": s.ratio_max,
                    "ratios_per_round": s.ratios,
                    "failures": s.failures,
                    "samples": {n: [asdict(x) for x in self.samples[key][n]] for n in NAMES},
                }
            )
        return out


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_ratio(s: Summary) -> tuple[str, str]:
    if s.ratio is None:
        return "n/a", "n/a"
    spread = f"{s.ratio_min:.2f}-{s.ratio_max:.2f}" if s.ratio_min is not None else "n/a"
    return f"{s.ratio:.2f}x", spread


def ratio_header(first: str, second: str) -> str:
    return f"ratio (>1 = {first} better: {first}/{second} for rates, {second}/{first} for ↓ figures)"


def markdown_table(
    results: Results,
    keys: list[str],
    columns: tuple[str, str] = ("dockyard", "distribution 2.8.2"),
    names: tuple[str, str] = ("dockyard", "distribution"),
) -> str:
    """``columns``: what the two slots ran, ``names`` the same for the ratio's header (``python -m
    bench --baseline`` changes the second)."""
    lines = [
        f"| Figure | Unit | {columns[0]} | {columns[1]} | {ratio_header(*names)} | ratio spread (min-max) |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for key in keys:
        s = results.summary(key)
        ratio, spread = fmt_ratio(s)
        unit = s.figure.unit + ("" if s.figure.higher_better else " ↓")
        failed = " ⚠" if s.failures else ""
        lines.append(
            f"| {s.figure.label}{failed} | {unit} | {fmt(s.medians[DOCKYARD])} | "
            f"{fmt(s.medians[DISTRIBUTION])} | {ratio} | {spread} |"
        )
    return "\n".join(lines)
