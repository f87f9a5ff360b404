"""Memory cgroups for the servers a benchmark starts: the memory the kernel charges each one.

Summed RSS counts a page once per process that maps it, so a page dockyard's workers share
with their parent (the modules it imported before forking them) counts three times with two
workers. The kernel charges that page once, to one cgroup, and a container's memory limit holds
the server to what is charged. When the bench may create memory cgroups (root, with the memory
controller mounted as cgroup v2 or v1), each server runs in one of its own (nginx in front of
dockyard in dockyard's), and the bench reports the anonymous memory charged to it: cgroup v2's
``anon``, v1's ``rss`` in ``memory.stat``. That leaves out the page cache, which both registries
fill alike with the blobs they write and read and which the kernel reclaims, and the pages of
program files another process loaded first. Without such a hierarchy, :meth:`Hierarchy.find`
returns ``None`` and those rows are left out.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
_serial = itertools.count(1)


@dataclass(frozen=True)
class MemoryCgroup:
    """One server's cgroup: processes join it through :meth:`wrap`; :meth:`charged_bytes`."""

    path: Path
    key: str  # the memory.stat line of anonymous memory: "anon" (v2) or "rss" (v1)

    def wrap(self, command: list[str]) -> list[str]:
        """``command``, started inside this cgroup: a shell joins it, then ``exec``s the command
        (same pid, so the process group and the signals are the command's own)."""
        procs = shlex.quote(str(self.path / "cgroup.procs"))
        return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *command]

    def charged_bytes(self) -> int:
        """Anonymous memory charged to the cgroup now (0 once it is gone)."""
        try:
            with open(self.path / "memory.stat") as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == self.key:
                        return int(value)
        except OSError:
            pass
        return 0

    def pids(self) -> list[int]:
        try:
            return [int(pid) for pid in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def remove(self, timeout: float = 10.0) -> None:
        """Remove the cgroup once its processes have gone (they leave it as they are reaped);
        any still in it are killed first."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@dataclass(frozen=True)
class Hierarchy:
    """Where this machine lets the bench create memory cgroups."""

    root: Path
    key: str
    version: int

    @classmethod
    def find(cls, base: Path = CGROUP_ROOT) -> Hierarchy | None:
        """The cgroup v2 hierarchy if its root delegates the memory controller, else v1's memory
        hierarchy; ``None`` if neither exists or this process may not create a cgroup there."""
        candidates: list[Hierarchy] = []
        try:
            if "memory" in (base / "cgroup.subtree_control").read_text().split():
                candidates.append(cls(base, "anon", 2))
        except OSError:
            pass
        if (base / "memory" / "memory.stat").is_file():
            candidates.append(cls(base / "memory", "rss", 1))
        for hierarchy in candidates:
            try:
                probe = hierarchy.create("probe")
            except OSError:
                continue
            probe.remove()
            return hierarchy
        return None

    def create(self, name: str) -> MemoryCgroup:
        """A new, empty cgroup named for this process and ``name``."""
        path = self.root / f"dockyard-bench-{os.getpid()}-{name}-{next(_serial)}"
        path.mkdir()
        cgroup = MemoryCgroup(path, self.key)
        if not (path / "memory.stat").is_file():
            cgroup.remove()
            raise OSError(f"{path}: no memory accounting")
        return cgroup

    def describe(self) -> str:
        return f"cgroup v{self.version} at {self.root} (memory.stat {self.key})"
