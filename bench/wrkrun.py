"""Load generators for small requests: wrk (with a Lua ``done()`` printing percentiles) and,
for HEAD, ApacheBench.

wrk 4.1.0 (Debian) cannot benchmark HEAD: its parser waits for the ``Content-Length`` bytes of
a HEAD response, which never come, so every connection stalls and 0 requests complete. HEAD
figures therefore use ``ab -i -k`` (C, keep-alive), with percentiles from its ``-e`` CSV.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = r"""
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local accept = os.getenv("BENCH_ACCEPT")
if accept and accept ~= "" then wrk.headers["Accept"] = accept end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %d %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

_RESULT = re.compile(r"^BENCH_RESULT ((?:\d+ ?){10})$", re.M)


@dataclass
class LoadResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    tool: str = "wrk"

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def write_script(directory: Path) -> Path:
    path = directory / "bench.lua"
    path.write_text(LUA)
    return path


def run_wrk(
    script: Path, url: str, *, method: str, connections: int, seconds: int, accept: str = ""
) -> LoadResult:
    threads = max(1, min(2, connections))
    env = dict(os.environ, BENCH_METHOD=method, BENCH_ACCEPT=accept)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False)
    match = _RESULT.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    n, dur_us, connect, read, write, status, timeout, p50, p99, mx = (int(x) for x in match.group(1).split())
    return LoadResult(
        requests=n,
        seconds=dur_us / 1e6,
        errors={"connect": connect, "read": read, "write": write, "status": status, "timeout": timeout},
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
        max_ms=mx / 1000,
    )


_AB_FIELD = re.compile(
    r"^(Complete requests|Failed requests|Non-2xx responses|Time taken for tests):\s+([\d.]+)", re.M
)


def run_ab(
    workdir: Path, url: str, *, connections: int, seconds: int, accept: str = "", head: bool = True
) -> LoadResult:
    csv = workdir / "ab.csv"
    cmd = ["ab", "-q", "-k", "-c", str(connections), "-t", str(seconds), "-n", "100000000", "-e", str(csv)]
    if head:
        cmd.append("-i")
    if accept:
        cmd += ["-H", f"Accept: {accept}"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    fields = {k: float(v) for k, v in _AB_FIELD.findall(out.stdout)}
    if out.returncode != 0 or "Complete requests" not in fields:
        raise RuntimeError(f"ab failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    pct: dict[int, float] = {}
    for line in csv.read_text().splitlines()[1:]:
        p, _, ms = line.partition(",")
        pct[int(p)] = float(ms)
    return LoadResult(
        requests=int(fields["Complete requests"]),
        seconds=fields["Time taken for tests"],
        errors={
            "failed": int(fields.get("Failed requests", 0)),
            "non2xx": int(fields.get("Non-2xx responses", 0)),
        },
        p50_ms=pct.get(50, 0.0),
        p99_ms=pct.get(99, 0.0),
        max_ms=pct.get(100, 0.0),
        tool="ab",
    )
