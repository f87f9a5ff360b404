"""``python -m bench.s3_registries`` (``make bench-s3``) end to end on a small scale: SeaweedFS,
PostgreSQL, two dockyard replicas behind HAProxy and distribution 2.8.2 with ``storage.s3``, one
round of a 12 MiB chunked push (two PATCHes), redirected pulls, three seconds of manifest GETs and a
few images. It checks that every figure was measured on both registries and the table printed,
never how fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.interop


def test_every_figure_on_both_registries(tmp_path: Path) -> None:
    out = tmp_path / "s3.json"
    argv = [sys.executable, "-m", "bench.s3_registries", "--rounds", "1", "--images", "6"]
    argv += ["--seconds", "3", "--sizes", "12", "--pull-reps", "1", "--json", str(out)]
    run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=400, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rounds"]
    for figure in ("push.12M", "pull", "small", "small.p99", "images"):
        for registry in ("dockyard", "distribution"):
            assert row[f"{registry}.{figure}"] > 0, (registry, figure)
    assert row["store.multipart"] > 0 and row["load"]
    table = [line for line in run.stdout.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 5, run.stdout  # header, rule, five figures
    assert all(line.rstrip().endswith(("met |", "missed |")) for line in table[2:])
