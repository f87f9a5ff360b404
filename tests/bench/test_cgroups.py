"""``bench.cgroups``: the memory the kernel charges a server, measured in a real memory cgroup.

The figure exists because summed RSS counts a page a parent shares with its forked children
once per process: the test forks a child after touching 64 MiB and checks that the cgroup is
charged for the pages once while the summed RSS counts them twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench.cgroups import Hierarchy
from bench.procstat import group_pids, group_rss_bytes

from dockyard.testing.processes import stop_group

MIB = 2**20
# Touches 64 MiB, forks a child that keeps the same pages (copy-on-write, never written), and
# says so once both are up.
HOLDER = """
import os, sys, time
held = bytearray(64 << 20)
for i in range(0, len(held), 4096):
    held[i] = 1
if os.fork() == 0:
    time.sleep(600)
    os._exit(0)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def hierarchy() -> Hierarchy:
    if os.geteuid() != 0:
        pytest.skip("creating memory cgroups needs root")
    found = Hierarchy.find()
    assert found is not None, "root, but no memory cgroup hierarchy this process can write"
    return found


def test_charged_once_for_pages_a_fork_shares(hierarchy: Hierarchy) -> None:
    cgroup = hierarchy.create("test")
    proc = subprocess.Popen(
        cgroup.wrap([sys.executable, "-c", HOLDER]),
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 10
        while len(cgroup.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(cgroup.pids()) == sorted(group_pids(proc.pid))  # the shell exec'd: same pid
        assert proc.pid in cgroup.pids() and len(cgroup.pids()) == 2
        charged, summed_rss = cgroup.charged_bytes(), group_rss_bytes(group_pids(proc.pid))
        assert 64 * MIB <= charged < 96 * MIB, charged / MIB
        assert summed_rss >= 2 * 64 * MIB, summed_rss / MIB
    finally:
        stop_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        cgroup.remove()
    assert not cgroup.path.exists()
    assert cgroup.charged_bytes() == 0


def test_remove_kills_what_is_left(hierarchy: Hierarchy) -> None:
    cgroup = hierarchy.create("test")
    proc = subprocess.Popen(cgroup.wrap(["sleep", "600"]), start_new_session=True)
    deadline = time.monotonic() + 10
    while proc.pid not in cgroup.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroup.pids() == [proc.pid]
    cgroup.remove()  # the process is still running: it is killed, and leaves the cgroup as it dies
    assert proc.wait(10) == -9
    assert not cgroup.path.exists()


def test_no_hierarchy_where_nothing_accounts_memory(tmp_path: Path) -> None:
    assert Hierarchy.find(tmp_path) is None
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.stat").write_text("rss 0\n")
    # A directory made there is no cgroup: it has no memory.stat of its own.
    assert Hierarchy.find(tmp_path) is None
    assert list((tmp_path / "memory").iterdir()) == [tmp_path / "memory" / "memory.stat"]
