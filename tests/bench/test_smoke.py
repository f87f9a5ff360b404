"""``python -m bench`` runs every configuration end to end: standalone, dockyard behind nginx with
the accelerated download path, and both registries terminating TLS. Tiny blobs and one round keep
it to seconds; it checks that each figure was measured on both servers, never how fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.interop
BENCH = [
    sys.executable,
    "-m",
    "bench",
    "--quick",
    "--rounds",
    "1",
    "--only",
    "push",
    "pull",
    "--blob-mib",
    "2",
]


def test_push_and_pull_in_every_configuration(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    dockyard = Path(sys.executable).with_name("dockyard")  # what it finds by itself, named
    run = subprocess.run(
        [*BENCH, "--tmpdir", str(tmp_path), "--json", str(out), "--dockyard", str(dockyard)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads(out.read_text())
    figures = {f["key"]: f for f in doc["figures"]}
    for prefix in ("", "accel.", "tls."):
        for key in ("pull.single", "pull.parallel", "pull.single.cpu", "pull.parallel.cpu", "mem.peak"):
            assert f"{prefix}{key}" in figures, sorted(figures)
    for key in ("push.monolithic.2M", "push.chunked.2M", "tls.push.monolithic.2M", "tls.push.chunked.2M"):
        assert key in figures
        assert f"{key}.cpu" in figures
    assert "accel.push.monolithic.2M" not in figures  # the accelerated path is about pulls
    # Run as root, each server has a memory cgroup of its own (bench.cgroups) and the kernel's
    # charge is reported beside RSS and PSS.
    if os.geteuid() == 0:
        assert doc["memory_cgroups"], doc["memory_cgroups"]
        for prefix in ("", "accel.", "tls."):
            for key in ("mem.idle.charged", "mem.peak.charged"):
                assert f"{prefix}{key}" in figures, sorted(figures)
    for key, fig in figures.items():
        assert fig["failures"] == [], (key, fig["failures"])
        assert all(v is not None for v in fig["median"].values()), key
    assert doc["round_errors"] == []
    assert doc["dockyard"] == str(dockyard)
    assert "FAILED" not in run.stdout
    # What the bench writes is what bench.compare reads: the run against itself changes nothing.
    compared = subprocess.run(
        [sys.executable, "-m", "bench.compare", "--base", str(out), "--head", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert compared.returncode == 0, compared.stderr
    rated = sum(1 for f in figures.values() if f["ratio"])  # a CPU figure of 0 ticks has none
    assert rated > 10
    assert f"1 base runs, 1 head runs, {rated} figures" in compared.stdout
    assert f"below noise: 0 of {rated}" in compared.stdout
