"""Watching a scan from /proc: the Syft processes in dockyard's process group, their memory and
priority, and the memory of the worker that started them.

Syft is started by a dockyard worker (under ``nice``, which execs it), so it shares the server's
process group and is told apart by its command name. A thread samples every ``interval``: the
client is idle while it waits for a scan, so the thread takes nothing from the measurement.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bench.procstat import _stat_fields, group_pids, rss_bytes


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass
class Peaks:
    syft_rss: int = 0  # the largest VmRSS one Syft process reached
    worker_rss: int = 0  # the largest VmRSS of a worker while it had a Syft child
    group_rss: int = 0  # the largest sum over dockyard's processes, Syft's excluded
    syft_pids: set[int] = field(default_factory=set)
    niceness: set[int] = field(default_factory=set)  # as /proc showed each Syft process


class ScanProbe:
    def __init__(self, pgid: int, interval: float = 0.05) -> None:
        self.pgid = pgid
        self.interval = interval
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scan-probe", daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self.peaks

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        p = self.peaks
        others = 0
        for pid in group_pids(self.pgid):
            rss = rss_bytes(pid)
            if _comm(pid) != "syft":
                others += rss
                continue
            fields = _stat_fields(pid)
            p.syft_pids.add(pid)
            p.syft_rss = max(p.syft_rss, rss)
            if fields is not None:
                p.niceness.add(int(fields[16]))  # stat field 19: nice
                p.worker_rss = max(p.worker_rss, rss_bytes(int(fields[1])))  # field 4: ppid
        p.group_rss = max(p.group_rss, others)
