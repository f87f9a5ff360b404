"""``python -m bench.scan`` (``make bench-scan``) end to end on a small scale: one idle/scanning
round over two images and one 3 MiB image scanned alone. It checks that every figure was measured
and that /proc showed Syft at the default niceness, never how fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.scan_images import os_release

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live


def test_every_figure_measured(tmp_path: Path) -> None:
    out = tmp_path / "scan.json"
    argv = [sys.executable, "-m", "bench.scan", "--images", "2", "--rounds", "1", "--seconds", "1"]
    argv += ["--sizes", "3", "--tmpdir", str(tmp_path), "--json", str(out)]
    run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=500, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    for figure in report["throughput"]["figures"].values():
        assert figure["idle_rps"] > 0 and figure["scanning_rps"] > 0 and figure["ratio"] > 0
    (phase,) = report["throughput"]["rounds"]
    assert phase["scans"] == 2 and phase["states"] == ["done"]
    (size,) = report["sizes"]
    debian = os_release().get("ID") == "debian"  # the bench's OSV file has a glibc advisory there
    assert size["packages"] > 0 and size["findings"] == (3 if debian else 2)  # + left-pad, idna
    assert size["syft_s"] > 0 and size["syft_rss_mib"] > 0 and size["whole_s"] > 0
    assert size["niceness"] == [10]
    table = [line for line in run.stdout.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2 + 2 + 1, run.stdout  # two tables: header, rule; two figures; one size
