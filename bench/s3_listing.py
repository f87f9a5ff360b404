"""Listing on an object store: dockyard's listing index against distribution 2.8.2's S3 walk.

Both registries serve one SeaweedFS bucket (``rootdirectory`` shared). The layout is written
directly through dockyard's S3 driver, as both store it (``bench.data.build_layout``'s shape):
``--repos`` repositories each with one tag and one ``_layers`` link (distribution's catalog counts
directories holding ``_layers``), and one repository with ``--tags`` tags. Then ``dockyard index
rebuild`` fills the index in PostgreSQL, and in interleaved rounds (the order flips every round)
each registry is timed on:

- the whole catalog, every page with ``n=--page`` following ``Link`` (the result must hold every
  repository exactly once);
- ``GET /v2/<repo>/tags/list`` of the repository with ``--tags`` tags (median of ``--repeat``
  requests after one warm-up; the count is checked).

Ratios are distribution's time / dockyard's per round (> 1: dockyard faster); the figure is their
median and the spread min-max. dockyard serves with ``--workers 2``, background reconcile off.

    .venv/bin/python -m bench.s3_listing [--repos 10000] [--tags 10000] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import yaml

from bench.data import CATALOG_PREFIX, TAGS_REPO, make_image
from bench.httpclient import Connection, HTTPFailure
from bench.servers import find_distribution, find_dockyard, free_port
from dockyard.storage.drivers import create_driver
from dockyard.testing.postgres import PostgresServer, find_bin
from dockyard.testing.processes import stop_group

ROOT = "/bench-listing"
CONCURRENCY = 48


async def _bounded(jobs: list[Awaitable[None]], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[None]) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(j) for j in jobs))


async def populate(params: dict[str, Any], repos: int, tags: int) -> tuple[int, list[str]]:
    """Write the layout through the driver; (objects written, every repository name)."""
    driver = create_driver("s3", params, redirect=False)
    v2 = "/docker/registry/v2"
    image = make_image(-1, layer_size=2048)
    mhex = image.manifest_digest.split(":", 1)[1]
    link = image.manifest_digest.encode()
    writes: list[tuple[str, bytes]] = []
    for digest, content in [*image.blobs, (image.manifest_digest, image.manifest)]:
        hexd = digest.split(":", 1)[1]
        writes.append((f"{v2}/blobs/sha256/{hexd[:2]}/{hexd}/data", content))

    def repo(name: str, tag_names: list[str]) -> None:
        r = f"{v2}/repositories/{name}"
        digest = image.blobs[-1][0]
        writes.append((f"{r}/_layers/sha256/{digest.split(':', 1)[1]}/link", digest.encode()))
        writes.append((f"{r}/_manifests/revisions/sha256/{mhex}/link", link))
        writes.extend((f"{r}/_manifests/tags/{t}/current/link", link) for t in tag_names)

    names = [f"{CATALOG_PREFIX}/r{i:05d}" for i in range(repos)]
    for name in names:
        repo(name, ["latest"])
    repo(TAGS_REPO, [f"t{i:05d}" for i in range(tags)])
    await _bounded([driver.put_content(path, data) for path, data in writes], CONCURRENCY)
    return len(writes), sorted([*names, TAGS_REPO])


class Process:
    """A registry process on loopback, stopped by pid (its own session)."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str], log: Path) -> None:
        self.name, self.port, self.log = name, port, log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                with Connection(port, timeout=2) as conn:
                    if conn.request("GET", "/v2/").status == 200:
                        return
            except (HTTPFailure, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{name} did not come up: {log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        stop_group(self.proc, 15, 30.0)


def catalog_all(port: int, page: int, expected: list[str], limit: float) -> float | None:
    """Seconds to page through the whole catalog (None: gave up after ``limit`` seconds)."""
    seen: list[str] = []
    target: str | None = f"/v2/_catalog?n={page}"
    started = time.perf_counter()
    with Connection(port, timeout=limit + 60) as conn:
        while target is not None:
            r = conn.request("GET", target).expect(200, what="catalog page")
            seen += json.loads(r.body)["repositories"]
            link = r.headers.get("link")
            target = link[1 : link.index(">")] if link else None
            if target is not None and target.startswith("http"):
                target = "/" + target.split("/", 3)[3]
            if time.perf_counter() - started > limit:
                return None
    took = time.perf_counter() - started
    if seen != expected:
        raise RuntimeError(f"catalog on port {port}: {len(seen)} names, expected {len(expected)}")
    return took


def tags_list(port: int, count: int, repeat: int) -> float:
    """Median seconds of ``repeat`` full tags lists (after one warm-up)."""
    times = []
    with Connection(port, timeout=600) as conn:
        for i in range(repeat + 1):
            started = time.perf_counter()
            r = conn.request("GET", f"/v2/{TAGS_REPO}/tags/list").expect(200, what="tags list")
            took = time.perf_counter() - started
            got = len(json.loads(r.body)["tags"])
            if got != count:
                raise RuntimeError(f"tags list on port {port}: {got} tags, expected {count}")
            if i:
                times.append(took)
    return statistics.median(times)


def _ratio(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page", type=int, default=1000, help="catalog page size (distribution's maximum)")
    parser.add_argument("--repeat", type=int, default=5, help="tags lists timed per round")
    parser.add_argument("--limit", type=float, default=900.0, help="give a catalog walk up after this")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    from tests.servers.s3 import SeaweedFS

    work = Path(tempfile.mkdtemp(prefix="dockyard-s3listing-"))
    weed = SeaweedFS(work / "seaweedfs")
    pg_bin = find_bin()
    if pg_bin is None:
        raise SystemExit("bench: PostgreSQL is not installed (make debs)")
    postgres = PostgresServer(pg_bin)
    processes: list[Process] = []
    result: dict[str, Any] = {"repos": args.repos, "tags": args.tags, "page": args.page, "rounds": []}
    try:
        engine = weed.start()
        postgres.start()
        dsn = postgres.create_database()
        bucket = engine.bucket("listing")
        params = {**engine.driver_params(bucket), "rootdirectory": ROOT}
        started = time.perf_counter()
        objects, names = asyncio.run(populate(params, args.repos, args.tags))
        result["populate_seconds"] = time.perf_counter() - started
        print(f"wrote {objects} objects in {result['populate_seconds']:.1f} s", file=sys.stderr)

        common = {"version": "0.1", "log": {"level": "warn", "accesslog": {"disabled": True}}}
        storage = {"s3": params, "delete": {"enabled": True}, "redirect": {"disable": True}}
        dy_port, dist_port = free_port(), free_port()
        dy_config = {
            **common,
            "http": {"addr": f"127.0.0.1:{dy_port}"},
            "storage": storage,
            "database": {"dsn": dsn, "index": {"reconcileinterval": 0}},
        }
        dist_storage = {
            "s3": {**params, "v4auth": True},
            "delete": {"enabled": True},
            "redirect": {"disable": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        }
        dist_config = {**common, "http": {"addr": f"127.0.0.1:{dist_port}"}, "storage": dist_storage}
        (work / "dockyard.yml").write_text(yaml.safe_dump(dy_config))
        (work / "distribution.yml").write_text(yaml.safe_dump(dist_config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        dockyard = find_dockyard()
        started = time.perf_counter()
        subprocess.run(
            [dockyard, "index", "rebuild", "--config", str(work / "dockyard.yml")], check=True, env=env
        )
        result["rebuild_seconds"] = time.perf_counter() - started
        # distribution's AWS SDK panics at start on AWS_CA_BUNDLE (LoadCustomCABundleError).
        dist_env = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}
        argv_dy = [dockyard, "serve", "--config", str(work / "dockyard.yml"), "--workers", "2"]
        processes.append(Process("dockyard", argv_dy, dy_port, env, work / "dockyard.log"))
        argv_dist = [find_distribution(), "serve", str(work / "distribution.yml")]
        processes.append(Process("distribution", argv_dist, dist_port, dist_env, work / "distribution.log"))
        ports = {"dockyard": dy_port, "distribution": dist_port}
        for n in range(args.rounds):
            order = ["dockyard", "distribution"] if n % 2 == 0 else ["distribution", "dockyard"]
            row: dict[str, Any] = {}
            for name in order:
                row[f"{name}_catalog_s"] = catalog_all(ports[name], args.page, names, args.limit)
                row[f"{name}_tags_s"] = tags_list(ports[name], args.tags, args.repeat)
            print(json.dumps(row), file=sys.stderr)
            result["rounds"].append(row)
        for figure in ("catalog", "tags"):
            pairs = [(r[f"distribution_{figure}_s"], r[f"dockyard_{figure}_s"]) for r in result["rounds"]]
            done = [(d, y) for d, y in pairs if d is not None and y is not None]
            if done:
                result[f"{figure}_ratio"] = _ratio([d / y for d, y in done])
                result[f"{figure}_dockyard_s"] = statistics.median(y for _, y in done)
                result[f"{figure}_distribution_s"] = statistics.median(d for d, _ in done)
        _print(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
    finally:
        for process in reversed(processes):
            process.stop()
        postgres.stop()
        weed.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _print(result: dict[str, Any]) -> None:
    print(f"\nlisting on SeaweedFS: {result['repos']} repositories, {result['tags']} tags")
    populate, rebuild = result["populate_seconds"], result["rebuild_seconds"]
    print(f"populate {populate:.1f} s, dockyard index rebuild {rebuild:.1f} s")
    targets = {"catalog": 50.0, "tags": 10.0}
    for figure, what in (("catalog", f"catalog, all pages of n={result['page']}"), ("tags", "tags list")):
        ratio = result.get(f"{figure}_ratio")
        if ratio is None:
            print(f"{what}: no completed round")
            continue
        dy, dist = result[f"{figure}_dockyard_s"], result[f"{figure}_distribution_s"]
        met = "met" if ratio["median"] >= targets[figure] else "missed"
        print(
            f"{what}: dockyard {dy * 1000:.1f} ms, distribution {dist * 1000:.1f} ms,"
            f" ratio {ratio['median']:.1f}x ({ratio['min']:.1f}-{ratio['max']:.1f}),"
            f" target {targets[figure]:.0f}x {met}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
