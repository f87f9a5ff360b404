"""What scanning costs the registry, and what a scan costs.

``python -m bench.scan [--images 50] [--rounds 3] [--seconds 4] [--sizes 10 100 300] [--json FILE]``
starts ``dockyard serve`` (2 workers, a filesystem store in /dev/shm, ``log.level: warn``, no
access log) and pushes ``--images`` small images with real package metadata
(``bench.scan_images``: dpkg, Python, npm and Go packages, about 2 MiB each) and one image per
``--sizes`` (MiB: the same packages plus filler layers), with scanning off so nothing is scanned
yet. It imports a small OSV file it writes (advisories that match some of those packages) with
``dockyard vulndb update --from``, restarts the server with ``scan.enabled`` (defaults otherwise:
one scanner at a time, Syft at ``nice`` 19), then:

* **Throughput**: ``--rounds`` rounds, each an idle phase then a scanning phase. A phase runs wrk
  (c=16, ``--seconds`` each) on GET of a manifest by tag, then on GET ``/v2/``. The scanning phase
  first queues its share of the ``--images`` images with ``POST /admin/v1/scans`` (the images are
  split over the rounds, so ``--images`` scans in all), and after wrk waits for them to finish
  before the next idle phase. Each figure's ratio scanning/idle is taken per round; reported are
  the median and the min-max spread. How many of the phase's scans were still queued or running
  when its wrk runs ended is reported too: a phase whose scans all ended early measured idle time.
* **Per image size**: each ``--sizes`` image is scanned alone: Syft's wall time and peak RSS (its
  rusage, which dockyard records), the peaks /proc showed while sampling every 50 ms (the Syft
  process; the worker that started it; all of dockyard's processes but Syft), Syft's niceness
  as /proc showed it, and the whole scan: from the queue's timestamp to the stored findings'.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.procstat import group_pids
from bench.scan_images import Builder, MiB, os_release, push
from bench.scan_probe import ScanProbe
from bench.servers import find_dockyard, free_port
from bench.wrkrun import run_wrk, write_script
from dockyard.config.scan import SYFT_NICENESS
from dockyard.testing.images import OCI_MANIFEST
from dockyard.testing.processes import stop_group

CONNECTIONS = 16


def write_osv(path: Path) -> None:
    """A few advisories in osv.dev's ``all.zip`` shape that affect the images' packages."""
    fixed = [{"introduced": "0"}, {"fixed": "99.0"}]
    records: list[dict[str, Any]] = [
        {"id": "GHSA-bench-lpad", "ecosystem": "npm", "name": "left-pad", "cvss": True},
        {"id": "GHSA-bench-idna", "ecosystem": "PyPI", "name": "idna", "cvss": False},
    ]
    release = os_release()
    if release.get("ID") == "debian":
        records.append({"id": "DEBIAN-CVE-2099-0001", "ecosystem": f"Debian:{release['VERSION_ID']}",
                        "name": "glibc", "cvss": False})  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for r in records:
            record: dict[str, Any] = {
                "schema_version": "1.6.0",
                "id": r["id"],
                "modified": "2024-05-01T10:00:00Z",
                "aliases": [f"CVE-2099-{len(r['id']):04d}"],
                "affected": [{"package": {"ecosystem": r["ecosystem"], "name": r["name"]},
                              "ranges": [{"type": "ECOSYSTEM", "events": fixed}]}],
            }  # fmt: skip
            if r["cvss"]:
                vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
                record["severity"] = [{"type": "CVSS_V3", "score": vector}]
            archive.writestr(f"{r['id']}.json", json.dumps(record))


class Registry:
    """One ``dockyard serve`` on loopback, in its own session (stopped by its pid)."""

    def __init__(self, work: Path, workers: int) -> None:
        self.work = work
        self.workers = workers
        self.port = free_port()
        self.config_path = work / "dockyard.yml"
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self, scanning: bool) -> dict[str, Any]:
        return {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "http": {"addr": f"127.0.0.1:{self.port}"},
            "storage": {"filesystem": {"rootdirectory": str(self.work / "store"), "fsync": False}},
            "vulndb": {"path": str(self.work / "vulndb.sqlite")},
            "scan": {"enabled": scanning, "interval": "1s", "workdir": str(self.work / "scanwork")},
            "ui": {"enabled": False},
        }

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, scanning: bool) -> None:
        (self.work / "scanwork").mkdir(exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(scanning)))
        with open(self.work / "dockyard.log", "ab") as log:
            self.proc = subprocess.Popen(
                [find_dockyard(), "serve", "--config", str(self.config_path), "--workers", str(self.workers)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyard exited: {self.log_tail()}")
            try:
                up = httpx.get(f"{self.url}/v2/", timeout=2).status_code == 200
            except httpx.HTTPError:
                up = False
            if up and len(group_pids(self.pgid)) >= self.workers + 1:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockyard did not come up: {self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, signal.SIGTERM, 30.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        try:
            return (self.work / "dockyard.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def vulndb_update(self, archive: Path) -> None:
        cmd = [find_dockyard(), "vulndb", "update", "--config", str(self.config_path), "--from", str(archive)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)


def queue_scan(client: httpx.Client, repo: str, tag: str) -> float:
    """Queue a scan on demand; the queue's timestamp (the server's clock)."""
    r = client.post("/admin/v1/scans", json={"repository": repo, "reference": tag})
    if r.status_code != 202:
        raise RuntimeError(f"scan of {repo}:{tag}: {r.status_code} {r.text[:200]}")
    return float(r.json()["queued"]["queued"])


def scan_result(client: httpx.Client, repo: str, tag: str, queued: float) -> dict[str, Any] | None:
    """The image's result once a scan queued at ``queued`` has finished, else None."""
    r = client.get("/admin/v1/scans", params={"repository": repo, "reference": tag})
    r.raise_for_status()
    status = r.json()
    result = status.get("result")
    if status.get("queued") is None and result and float(result.get("finished", 0)) >= queued:
        return dict(result)
    return None


def wait_for(
    client: httpx.Client, jobs: dict[str, float], timeout: float = 1800
) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(jobs):
        if time.monotonic() > deadline:
            raise RuntimeError(f"scans not finished after {timeout}s: {sorted(set(jobs) - set(done))}")
        for repo, queued in jobs.items():
            if repo not in done and (result := scan_result(client, repo, "v1", queued)) is not None:
                done[repo] = result
        time.sleep(0.3)
    return done


def small_requests(script: Path, url: str, seconds: int) -> dict[str, Any]:
    manifest = run_wrk(
        script, f"{url}/v2/bench/img00/manifests/v1", method="GET", connections=CONNECTIONS,
        seconds=seconds, accept=OCI_MANIFEST,
    )  # fmt: skip
    base = run_wrk(script, f"{url}/v2/", method="GET", connections=CONNECTIONS, seconds=seconds)
    out = {}
    for name, res in (("manifest", manifest), ("v2", base)):
        if res.failed:
            raise RuntimeError(f"wrk {name}: errors {res.errors}")
        out[name] = {"rps": round(res.rps, 1), "p50_ms": res.p50_ms, "p99_ms": res.p99_ms}
    return out


def throughput(
    reg: Registry, client: httpx.Client, repos: list[str], rounds: int, seconds: int
) -> dict[str, Any]:
    script = write_script(reg.work)
    small_requests(script, reg.url, 2)  # warm-up: every worker has answered, caches are filled
    per_round = []
    for r in range(rounds):
        idle = small_requests(script, reg.url, seconds)
        batch = repos[r::rounds]
        jobs = {repo: queue_scan(client, repo, "v1") for repo in batch}
        started = time.monotonic()
        with ScanProbe(reg.pgid) as peaks:
            scanning = small_requests(script, reg.url, seconds)
            measured = time.monotonic() - started
            unfinished = sum(scan_result(client, repo, "v1", q) is None for repo, q in jobs.items())
            results = wait_for(client, jobs)
        drained = time.monotonic() - started
        states = sorted({res["state"] for res in results.values()})
        per_round.append({
            "idle": idle, "scanning": scanning, "scans": len(batch),
            "unfinished_after_wrk": unfinished, "wrk_seconds": round(measured, 1),
            "batch_seconds": round(drained, 1), "states": states, "syft_niceness": sorted(peaks.niceness),
            "syft_processes": len(peaks.syft_pids),
        })  # fmt: skip
        print(f"round {r + 1}: {per_round[-1]}", file=sys.stderr, flush=True)
    figures = {}
    for name in ("manifest", "v2"):
        ratios = [x["scanning"][name]["rps"] / x["idle"][name]["rps"] for x in per_round]
        figures[name] = {
            "idle_rps": statistics.median(x["idle"][name]["rps"] for x in per_round),
            "scanning_rps": statistics.median(x["scanning"][name]["rps"] for x in per_round),
            "ratio": round(statistics.median(ratios), 3),
            "spread": [round(min(ratios), 3), round(max(ratios), 3)],
        }
    return {"figures": figures, "rounds": per_round}


def per_size(reg: Registry, client: httpx.Client, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        repo = f"bench/size{size}"
        with ScanProbe(reg.pgid) as peaks:
            queued = queue_scan(client, repo, "v1")
            result = wait_for(client, {repo: queued})[repo]
        [image] = result["images"]
        if image.get("state") != "generated":
            raise RuntimeError(f"{repo}: {image}")
        rows.append({
            "size_mib": size, "layer_mib": round(image["layerBytes"] / MiB, 1), "packages": image["packages"],
            "findings": len(image.get("findings") or []), "syft_s": image["seconds"],
            "syft_rss_mib": round(image["maxRssBytes"] / MiB, 1),
            "syft_rss_sampled_mib": round(peaks.syft_rss / MiB, 1),
            "worker_rss_mib": round(peaks.worker_rss / MiB, 1),
            "dockyard_rss_mib": round(peaks.group_rss / MiB, 1),
            "niceness": sorted(peaks.niceness), "whole_s": round(float(result["finished"]) - queued, 2),
        })  # fmt: skip
        print(f"size {size} MiB: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def markdown(report: dict[str, Any]) -> str:
    t = report["throughput"]
    lines = [
        f"dockyard serve --workers 2, scan.enabled (concurrency 1, niceness {SYFT_NICENESS}); "
        f"wrk c={CONNECTIONS}, "
        f"{report['seconds']} s per figure, {report['rounds']} idle/scanning rounds, "
        f"{report['images']} scans; load before: {report['load_before']}",
        "",
        "| figure | idle req/s | scanning req/s | scanning/idle (median) | spread (min-max) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (("manifest", "GET manifest by tag"), ("v2", "GET /v2/")):
        f = t["figures"][name]
        lines.append(
            f"| {label} | {f['idle_rps']:.0f} | {f['scanning_rps']:.0f} | {f['ratio']:.2f} "
            f"| {f['spread'][0]:.2f}-{f['spread'][1]:.2f} |"
        )
    unfinished = [x["unfinished_after_wrk"] for x in t["rounds"]]
    batches = [x["batch_seconds"] for x in t["rounds"]]
    nice = sorted({n for x in t["rounds"] for n in x["syft_niceness"]})
    lines += [
        "",
        f"Scans still queued or running when each scanning phase's wrk ended: {unfinished} "
        f"(of {[x['scans'] for x in t['rounds']]}); each batch took {batches} s; "
        f"Syft's niceness seen in /proc: {nice}.",
        "",
        "| image | layers MiB | packages | findings | Syft s | Syft peak RSS MiB (rusage / sampled) "
        "| scanning worker peak RSS MiB | dockyard peak RSS MiB (all processes) | whole scan s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["sizes"]:
        lines.append(
            f"| {row['size_mib']} MiB | {row['layer_mib']} | {row['packages']} | {row['findings']} "
            f"| {row['syft_s']:.2f} | {row['syft_rss_mib']} / {row['syft_rss_sampled_mib']} "
            f"| {row['worker_rss_mib']} | {row['dockyard_rss_mib']} | {row['whole_s']:.2f} |"
        )
    lines.append(f"\nload after: {report['load_after']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 300], metavar="MIB")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tmpdir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench.scan: wrk is not installed (make debs)")
    work = Path(tempfile.mkdtemp(prefix="dockyard-scanbench-", dir=args.tmpdir))
    reg = Registry(work, args.workers)
    report: dict[str, Any] = {"images": args.images, "rounds": args.rounds, "seconds": args.seconds}
    report["load_before"] = Path("/proc/loadavg").read_text().split()[:3]
    try:
        builder = Builder()
        repos = [f"bench/img{i:02d}" for i in range(args.images)]
        reg.start(scanning=False)  # pushes queue nothing: the bench queues each scan itself
        with httpx.Client(base_url=reg.url, timeout=600) as client:
            for repo in repos:
                push(client, builder.image(repo, "v1"))
            for size in args.sizes:
                push(client, builder.image(f"bench/size{size}", "v1", size * MiB))
        reg.stop()
        write_osv(work / "osv.zip")
        reg.vulndb_update(work / "osv.zip")
        reg.start(scanning=True)
        with httpx.Client(base_url=reg.url, timeout=600) as client:
            report["throughput"] = throughput(reg, client, repos, args.rounds, args.seconds)
            report["sizes"] = per_size(reg, client, args.sizes)
        report["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    except BaseException:
        print(reg.log_tail(), file=sys.stderr)
        raise
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
