"""Syft runs behind the workers serving clients: under ``nice`` at ``scan.niceness`` (19 by
default), and one scanner at a time unless ``scan.concurrency`` says otherwise.

The configured binary is a shell script that records the niceness its own process has (what
``nice`` gave the process it execs) and fails, so no real Syft run is needed to see it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dockyard.app import create_services, scan_jobs
from dockyard.config import parse_config
from dockyard.scan.syft import Syft, SyftError


def recording_syft(tmp_path: Path) -> tuple[Path, Path]:
    record = tmp_path / "niceness"
    script = tmp_path / "syft"
    # /proc/<pid>/stat field 19 is the nice value; the command name ("syft") has no spaces.
    script.write_text(f"#!/bin/sh\ncut -d' ' -f19 /proc/$$/stat > {record}\nexit 3\n")
    script.chmod(0o755)
    return script, record


def test_syft_runs_at_the_configured_niceness(tmp_path: Path) -> None:
    script, record = recording_syft(tmp_path)
    syft = Syft(str(script), niceness=7)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SyftError, match="exited with status 3"):
        asyncio.run(syft.scan(tmp_path, work, "app", "sha256:" + "0" * 64))
    assert int(record.read_text()) == min(19, os.nice(0) + 7)


def test_by_default_one_scanner_runs_syft_at_niceness_nineteen(tmp_path: Path) -> None:
    script, record = recording_syft(tmp_path)
    tree = {"storage": {"inmemory": {}}, "scan": {"enabled": True, "syft": str(script)}}
    services = create_services(parse_config(tree))
    assert services.scans is not None
    assert [job.name for job in scan_jobs(services)] == ["scan-0"]  # one slot: one Syft at a time
    syft = services.scans.scanner.syft
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SyftError):
        asyncio.run(syft.scan(tmp_path, work, "app", "sha256:" + "0" * 64))
    assert int(record.read_text()) == 19
