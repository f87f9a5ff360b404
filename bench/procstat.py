"""Server process-group accounting from /proc: CPU seconds and summed resident memory.

A server is started in its own session, so its process group id is the pid we started and
every worker it forks shares it. CPU is utime+stime (+cutime+cstime for reaped children) of
every process in the group; RSS is the sum of VmRSS over the group, sampled in a thread.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable

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


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def group_rss_bytes(pids: list[int]) -> int:
    return sum(rss_bytes(pid) for pid in pids)


def client_cpu_seconds() -> float:
    """This process (all threads) plus its reaped children (curl, wrk, cp)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class RssSampler(threading.Thread):
    """Samples the summed RSS of several process groups every ``interval`` seconds.

    ``peaks[(name, phase)]`` holds the highest sum seen while ``phase`` was current, and
    ``peaks[(name, "*")]`` the highest overall.
    """

    def __init__(self, groups: Callable[[], dict[str, int]], interval: float = 0.05) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.groups = groups
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[tuple[str, str], int] = {}
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def set_phase(self, phase: str) -> None:
        self.sample()
        with self._lock:
            self.phase = phase
        self.sample()

    def peak(self, name: str, phase: str = "*") -> int:
        with self._lock:
            return self.peaks.get((name, phase), 0)

    def sample(self, pids_cache: dict[str, list[int]] | None = None) -> None:
        for name, pgid in self.groups().items():
            pids = pids_cache[name] if pids_cache and name in pids_cache else group_pids(pgid)
            total = group_rss_bytes(pids)
            with self._lock:
                for key in ((name, self.phase), (name, "*")):
                    if total > self.peaks.get(key, 0):
                        self.peaks[key] = total

    def run(self) -> None:
        cache: dict[str, list[int]] = {}
        refreshed = 0.0
        while not self._halt.wait(self.interval):
            now = time.monotonic()
            if now - refreshed > 0.5:  # re-list the groups twice a second, sample 20 times
                cache = {name: group_pids(pgid) for name, pgid in self.groups().items()}
                refreshed = now
            self.sample(cache)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
