"""Server process-group accounting from /proc: CPU seconds and summed resident memory.

A server is started in its own session, so its process group id is the pid we started and
every worker it forks shares it. CPU is utime+stime (+cutime+cstime for reaped children) of
every process in the group; RSS is the sum of VmRSS over the group, PSS the sum of each member's
proportional set size, both sampled by :class:`RssSampler` in a process of its own, which also
samples the memory charged to each server's cgroup (:mod:`bench.cgroups`) when it has one.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from bench.cgroups import MemoryCgroup

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def group_cpu_seconds(pgid: int) -> float:
    ticks = 0
    for pid in group_pids(pgid):
        fields = _stat_fields(pid)
        if fields is not None:
            # fields[11..14] are utime, stime, cutime, cstime (stat fields 14-17)
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def _kib_field(path: str, field: str) -> int:
    """Bytes of a ``<field>: <n> kB`` line of a /proc file (0 once the process is gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    return _kib_field(f"/proc/{pid}/status", "VmRSS:")


def group_rss_bytes(pids: list[int]) -> int:
    return sum(rss_bytes(pid) for pid in pids)


def pss_bytes(pid: int) -> int:
    """The process's proportional set size: its private pages, and each page it shares with other
    processes divided by how many share it (summed over a group, every page counts once; summed
    VmRSS counts a page the workers share with their parent once per process)."""
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def group_pss_bytes(pids: list[int]) -> int:
    return sum(pss_bytes(pid) for pid in pids)


def _program(pid: int) -> str:
    """What a process runs, to tell servers apart: its command's base name, or the module a
    ``python -m`` runs ("" once the process is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return ""
    words = [a.decode(errors="replace") for a in argv if a]
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1]
    return os.path.basename(words[0]).split(":")[0] if words else ""


def cpu_by_program(kinds: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """utime+stime of every running process on the machine whose program (:func:`_program`) is
    one of a kind's, summed per kind: the servers a benchmark starts, whoever started them
    (the object store and the database serve both registries of a run)."""
    which = {program: kind for kind, programs in kinds.items() for program in programs}
    out = dict.fromkeys(kinds, 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        kind = which.get(_program(int(entry)))
        fields = _stat_fields(int(entry)) if kind else None
        if kind and fields is not None:
            out[kind] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def client_cpu_seconds() -> float:
    """This process (all threads) plus its reaped children (curl, wrk, cp)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class RssSampler:
    """Samples the summed RSS of several process groups every ``interval`` seconds, in a process
    of its own: a sampling thread in the client would hold the client's GIL for milliseconds at a
    time, and a client thread waiting to reacquire it after each ``sendfile`` or ``recv`` made the
    client, not the server, the bottleneck of large pushes.

    ``peaks[(name, phase)]`` holds the highest sum seen while ``phase`` was current, and
    ``peaks[(name, "*")]`` the highest overall; a name may stand for several groups (dockyard and
    nginx in front of it). The groups are re-read from ``groups()`` whenever
    the phase changes and on ``update_groups()``; their member pids twice a second.
    """

    def __init__(
        self,
        groups: Callable[[], dict[str, list[int]]],
        interval: float = 0.05,
        cgroups: Callable[[], dict[str, MemoryCgroup]] | None = None,
    ) -> None:
        self.groups = groups
        self.cgroups = cgroups or dict
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.get_context("fork").Process(
            target=_sample_loop, args=(child, interval), daemon=True, name="rss-sampler"
        )

    def start(self) -> None:
        self._proc.start()

    def _call(self, *msg: Any) -> Any:
        self._conn.send(msg)
        return self._conn.recv()

    def set_phase(self, phase: str) -> None:
        self._call("phase", phase, self.groups(), self.cgroups())

    def update_groups(self) -> None:
        self._call("groups", self.groups(), self.cgroups())

    @property
    def peaks(self) -> dict[tuple[str, str], int]:
        result: dict[tuple[str, str], int] = self._call("peaks")
        return result

    @property
    def pss_peaks(self) -> dict[tuple[str, str], int]:
        """As :attr:`peaks`, of the summed proportional set size (:func:`pss_bytes`)."""
        result: dict[tuple[str, str], int] = self._call("pss_peaks")
        return result

    @property
    def charged_peaks(self) -> dict[tuple[str, str], int]:
        """As :attr:`peaks`, of the anonymous memory charged to each name's memory cgroup
        (:mod:`bench.cgroups`; no entry for a name without one)."""
        result: dict[tuple[str, str], int] = self._call("charged_peaks")
        return result

    def peak(self, name: str, phase: str = "*") -> int:
        return self.peaks.get((name, phase), 0)

    def stop(self) -> None:
        if self._proc.is_alive():
            self._call("stop")
        self._proc.join(5)


def _sample_loop(conn: Connection, interval: float) -> None:
    phase = "start"
    groups: dict[str, list[int]] = {}
    pids: dict[str, list[int]] = {}
    peaks: dict[tuple[str, str], int] = {}
    pss_peaks: dict[tuple[str, str], int] = {}
    charged_peaks: dict[tuple[str, str], int] = {}
    cgroups: dict[str, MemoryCgroup] = {}
    listed = 0.0

    def relist() -> None:
        nonlocal pids, listed
        pids = {name: [pid for pgid in pgids for pid in group_pids(pgid)] for name, pgids in groups.items()}
        listed = time.monotonic()

    def sample() -> None:
        totals = [(peaks, name, group_rss_bytes(members)) for name, members in pids.items()]
        totals += [(pss_peaks, name, group_pss_bytes(members)) for name, members in pids.items()]
        totals += [(charged_peaks, name, cgroup.charged_bytes()) for name, cgroup in cgroups.items()]
        for found, name, total in totals:
            for key in ((name, phase), (name, "*")):
                if total > found.get(key, 0):
                    found[key] = total

    while True:
        if conn.poll(interval):
            msg = conn.recv()
            if msg[0] == "phase":
                sample()
                phase, groups, cgroups = msg[1], msg[2], msg[3]
                relist()
                sample()
                conn.send(None)
            elif msg[0] == "groups":
                groups, cgroups = msg[1], msg[2]
                relist()
                conn.send(None)
            elif msg[0] == "peaks":
                conn.send(dict(peaks))
            elif msg[0] == "pss_peaks":
                conn.send(dict(pss_peaks))
            elif msg[0] == "charged_peaks":
                conn.send(dict(charged_peaks))
            else:
                conn.send(None)
                return
        if time.monotonic() - listed > 0.5:
            relist()
        sample()
