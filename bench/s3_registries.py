"""Registries on an object store: dockyard replicas against distribution 2.8.2's S3 driver.

One run, one SeaweedFS: dockyard as two ``dockyard serve`` replicas behind HAProxy
(``deploy/haproxy/haproxy.cfg``) with PostgreSQL as their coordinator (``tests.servers.cluster``,
the deployment README "Running several replicas" describes), and distribution 2.8.2 with
``storage.s3`` on the same bucket under another ``rootdirectory``. Both redirect blob downloads
to presigned URLs (their S3 default), both use 10 MiB parts. In interleaved rounds (the order
flips every round) each registry is measured on:

- ``push.64M`` / ``push.512M``: a fresh blob pushed in 8 MiB PATCHes plus the PUT (``make
  bench``'s chunked push), MB/s. Both registries must copy a finished upload to its content
  address, so the store moves every byte twice;
- ``pull``: the 64 MiB blob by 4 parallel ``curl -L`` (307 to the store, then the store), MB/s;
- ``small``: ``GET`` of a manifest by tag at c=64 for ``--seconds`` (wrk), requests/s and p99;
- ``images``: ``--images`` small images (3 layers + config each) pushed by 16 clients, images/s,
  and ``images.cpu``: the CPU milliseconds per image of each kind of server process meanwhile
  (the registry's, SeaweedFS's, PostgreSQL's, HAProxy's), which tell where the two cores went.

Beside them, ``store.multipart``: the same 64 MiB sent by one botocore client straight into a
multipart upload of 10 MiB parts, the store's own ceiling for a push's first half. Ratios are
dockyard / distribution per round (> 1: dockyard better; for p99, distribution / dockyard); the
figure is their median and the spread min-max. The machine's load average is printed with every
round. ``--listing`` then runs ``bench.s3_listing`` (catalog of 10,000 repositories, tags list of
10,000 tags) with the same number of rounds.

    .venv/bin/python -m bench.s3_registries [--rounds 3] [--images 2000] [--json FILE] [--listing]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bench.data import BlobFile, make_blob_file, make_image
from bench.figures import _push_images, push_chunked, push_monolithic, run_async
from bench.httpclient import Connection, with_digest
from bench.procstat import cpu_by_program
from bench.s3_listing import Process
from bench.servers import find_distribution, free_port
from bench.wrkrun import run_wrk, write_script

MiB = 1 << 20
REPO = "bench/s3"
SMALL_REPO = "bench/small"
CLIENTS = 16
PULL_STREAMS = 4
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GROUPS = ("push", "pull", "small", "images")


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    unit: str
    target: float
    higher: bool = True  # a larger value is better (p99: smaller)


def push_key(size: int) -> str:
    return f"push.{size // MiB}M"


def targets(sizes: list[int], images: int) -> list[Target]:
    """The figures and the issue's targets (push sizes as measured: a smoke run pushes small)."""
    return [
        *(Target(push_key(s), f"push {s // MiB} MiB (8 MiB PATCHes + PUT)", "MB/s", 1.5) for s in sizes),
        Target("pull", f"pull {sizes[0] // MiB} MiB, {PULL_STREAMS} streams, both redirecting", "MB/s", 1.0),
        Target("small", "GET manifest by tag, c=64", "req/s", 3.0),
        Target("small.p99", "GET manifest by tag, c=64, p99 (lower is better)", "ms", 1.0, higher=False),
        Target("images", f"{images:,} small images by {CLIENTS} clients", "images/s", 2.0),
    ]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _blob(work: Path, size: int, seed: int) -> BlobFile:
    return make_blob_file(work / f"blob-{seed}", size, seed)


def push_rate(port: int, blob: BlobFile) -> float:
    """MB/s of one chunked push of ``blob`` (checked with a HEAD outside the timing)."""
    with Connection(port, timeout=900) as conn:
        started = time.perf_counter()
        push_chunked(conn, REPO, blob)
        took = time.perf_counter() - started
        r = conn.request("HEAD", f"/v2/{REPO}/blobs/{blob.digest}").expect(200, 307, what="HEAD pushed blob")
        if r.status == 200 and int(r.header("content-length") or -1) != blob.size:
            raise RuntimeError(f"port {port}: the pushed blob has {r.header('content-length')} bytes")
    return blob.size / took / 1e6


def pull_rate(port: int, blob: BlobFile, streams: int, reps: int) -> float:
    """MB/s of ``streams`` parallel curls, each fetching ``blob`` ``reps`` times, following the
    registry's redirect; every download is checked for 200 and its length."""
    url = f"http://127.0.0.1:{port}/v2/{REPO}/blobs/{blob.digest}"
    argv = ["curl", "-s", "-L", "-w", "%{http_code} %{size_download}\\n"]
    for _ in range(reps):
        argv += [url, "-o", "/dev/null"]
    started = time.perf_counter()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(streams)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    took = time.perf_counter() - started
    for proc, out in zip(procs, outs, strict=True):
        fields = out.split()
        got = list(zip(fields[::2], fields[1::2], strict=True))
        if proc.returncode != 0 or len(got) != reps or any(c != "200" or int(n) != blob.size for c, n in got):
            raise RuntimeError(f"pull from port {port}: curl exited {proc.returncode} with {got}")
    return blob.size * streams * reps / took / 1e6


def redirects(port: int, blob: BlobFile) -> bool:
    with Connection(port) as conn:
        return conn.request("GET", f"/v2/{REPO}/blobs/{blob.digest}").status == 307


def small_requests(port: int, seconds: int, script: Path) -> tuple[float, float]:
    """(requests/s, p99 ms) of GET manifest by tag at c=64; any error fails the figure."""
    url = f"http://127.0.0.1:{port}/v2/{SMALL_REPO}/manifests/latest"
    result = run_wrk(script, url, method="GET", connections=64, seconds=seconds, accept=OCI_MANIFEST)
    if result.failed or not result.requests:
        raise RuntimeError(f"wrk on port {port}: {result.errors}, {result.requests} requests")
    return result.rps, result.p99_ms


def push_small_image(port: int) -> None:
    image = make_image(-7, layer_size=2048)
    with Connection(port) as conn:
        for digest, content in image.blobs:
            r = conn.request("POST", f"/v2/{SMALL_REPO}/blobs/uploads/").expect(202, what="POST upload")
            headers = {"Content-Type": "application/octet-stream"}
            conn.request("PUT", with_digest(r.header("location"), digest), headers, content).expect(201)
        conn.request(
            "PUT", f"/v2/{SMALL_REPO}/manifests/latest", {"Content-Type": OCI_MANIFEST}, image.manifest
        ).expect(201, what="PUT manifest")


# The processes whose CPU an image costs, by what they run (procstat.cpu_by_program).
PROGRAMS = {
    "dockyard": ("dockyard.supervisor", "dockyard"),
    "distribution": ("docker-registry",),
    "seaweedfs": ("weed",),
    "postgresql": ("postgres",),
    "haproxy": ("haproxy",),
}


def images_rate(port: int, first: int, count: int) -> tuple[float, dict[str, float]]:
    """Images per second, and the CPU milliseconds per image of each kind of server process."""
    images = [make_image(first + i) for i in range(count)]
    before = cpu_by_program(PROGRAMS)
    started = time.perf_counter()
    run_async(_push_images(port, images, CLIENTS))
    rate = count / (time.perf_counter() - started)
    after = cpu_by_program(PROGRAMS)
    cpu = {kind: (after[kind] - before[kind]) * 1000 / count for kind in PROGRAMS}
    with Connection(port) as conn:  # spot-check outside the timing
        for image in images[:: max(1, count // 10)]:
            r = conn.request("GET", f"/v2/{image.repo}/manifests/{image.tag}", {"Accept": OCI_MANIFEST})
            if r.status != 200 or r.body != image.manifest:
                raise RuntimeError(f"port {port}: {image.repo}:{image.tag} did not come back")
    return rate, cpu


def store_multipart_rate(client: Any, bucket: str, blob: BlobFile) -> float:
    """MB/s of one client sending ``blob`` as a multipart upload of 10 MiB parts, sequentially."""
    key = f"bench-ceiling/{blob.digest[7:19]}"
    started = time.perf_counter()
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    with open(blob.path, "rb") as f:
        number = 1
        while chunk := f.read(10 * MiB):
            answer = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            number += 1
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    took = time.perf_counter() - started
    client.delete_object(Bucket=bucket, Key=key)
    return blob.size / took / 1e6


def measure(row: dict[str, Any], name: str, keys: list[str], fn: Callable[[], Any]) -> None:
    """One figure (or a tuple of them) of one registry into ``row``; a failure (an error answer,
    a broken transfer) is listed in ``row["failures"]`` and leaves the figure out of the round,
    not the run."""
    try:
        values = fn()
    except Exception as exc:
        row["failures"].append(f"{name} {keys[0]}: {exc}"[:500])
        return
    for key, value in zip(keys, values if len(keys) > 1 else [values], strict=True):
        row[f"{name}.{key}"] = value


def ratios(rounds: list[dict[str, Any]], target: Target) -> dict[str, float] | None:
    values = []
    for row in rounds:
        dy, dist = row.get(f"dockyard.{target.key}"), row.get(f"distribution.{target.key}")
        if dy and dist:
            values.append(dy / dist if target.higher else dist / dy)
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(result: dict[str, Any]) -> str:
    rounds = result["rounds"]
    sizes = [int(s) * MiB for s in result["sizes"]]
    lines = [
        f"dockyard (2 replicas + HAProxy + PostgreSQL) vs distribution {result['distribution']} (S3), "
        f"SeaweedFS {result['store']}, {len(rounds)} rounds, "
        f"load {result['load_before']} -> {result['load_after']}",
        "",
        "| figure | unit | dockyard | distribution | ratio (spread) | target | |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for target in targets(sizes, result["images"]):
        spread = ratios(rounds, target)
        if spread is None:
            continue
        dy = statistics.median(r[k] for r in rounds if (k := f"dockyard.{target.key}") in r)
        dist = statistics.median(r[k] for r in rounds if (k := f"distribution.{target.key}") in r)
        met = "met" if spread["median"] >= target.target else "missed"
        lines.append(
            f"| {target.label} | {target.unit} | {dy:,.1f} | {dist:,.1f} | {spread['median']:.2f}x "
            f"({spread['min']:.2f}-{spread['max']:.2f}) | {target.target:g}x | {met} |"
        )
    for name in ("dockyard", "distribution"):
        costs = [r[f"{name}.images.cpu"] for r in rounds if f"{name}.images.cpu" in r]
        if costs:
            each = ", ".join(f"{k} {statistics.median(c[k] for c in costs):.1f}" for k in PROGRAMS)
            lines.append(f"CPU ms per small image while {name} pushed (medians): {each}")
    store = statistics.median(r["store.multipart"] for r in rounds)
    lines += [
        "",
        f"store ceiling: one client into a SeaweedFS multipart upload (10 MiB parts): {store:.1f} MB/s "
        f"(rounds: {', '.join(format(r['store.multipart'], '.1f') for r in rounds)})",
        "loads per round: " + ", ".join(r["load"] for r in rounds),
        *(f"failed: {failure}" for r in rounds for failure in r["failures"]),
    ]
    return "\n".join(lines)


def _distribution_config(port: int, params: dict[str, Any], secret: str) -> dict[str, Any]:
    return {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secret},
        "storage": {
            "s3": {**params, "v4auth": True},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each small-request load")
    parser.add_argument("--sizes", default="64,512", help="push sizes in MiB (the first is also pulled)")
    parser.add_argument("--pull-reps", type=int, default=2)
    parser.add_argument(
        "--only", nargs="+", choices=GROUPS, default=list(GROUPS), help="figure groups to run"
    )
    parser.add_argument("--listing", action="store_true", help="then run bench.s3_listing")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--workdir", metavar="DIR", help="keep the servers' files here")
    args = parser.parse_args(argv)
    result = run(args)
    print(summarise(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.listing:
        listing = ["--rounds", str(args.rounds)]
        if args.json:
            listing += ["--json", str(Path(args.json).with_suffix(".listing.json"))]
        from bench.s3_listing import main as listing_main

        return listing_main(listing)
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.servers.cluster import Cluster

    sizes = [int(s) * MiB for s in args.sizes.split(",")]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="dockyard-s3bench-"))
    work.mkdir(parents=True, exist_ok=True)
    replica = {
        "log": {"accesslog": {"disabled": True}},
        "storage": {"redirect": {"disable": False}},  # the default of both, stated for the record
    }
    cluster = Cluster(work / "cluster", replicas=2, config=replica)
    distribution: Process | None = None
    result: dict[str, Any] = {
        "rounds": [],
        "load_before": load(),
        "images": args.images,
        "sizes": [size // MiB for size in sizes],
    }
    try:
        cluster.start()
        assert cluster.store is not None and cluster.lb is not None
        store = cluster.store
        params = store.driver_params(store.shared, rootdirectory=f"/distribution-{os.getpid()}")
        port = free_port()
        config = _distribution_config(port, params, cluster.secret)
        (work / "distribution.yml").write_text(yaml.safe_dump(config))
        # distribution's AWS SDK panics at start on AWS_CA_BUNDLE (LoadCustomCABundleError).
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE" and not k.startswith("REGISTRY_")}
        binary = find_distribution()
        distribution = Process(
            "distribution",
            [binary, "serve", str(work / "distribution.yml")],
            port,
            env,
            work / "distribution.log",
        )
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        result["distribution"] = (version.stdout.split() or ["?"])[-1]
        result["store"] = "4.48"
        ports = {"dockyard": cluster.lb.port, "distribution": port}
        script = write_script(work)
        for p in ports.values():
            push_small_image(p)
        pulled = _blob(work, sizes[0], 10_000)
        for name, p in ports.items():
            with Connection(p, timeout=900) as conn:
                push_monolithic(conn, REPO, pulled)
            if not redirects(p, pulled):
                raise RuntimeError(f"{name} does not redirect blob downloads")
        seed = 0
        for n in range(args.rounds):
            order = ["dockyard", "distribution"] if n % 2 == 0 else ["distribution", "dockyard"]
            row: dict[str, Any] = {"load": load()}
            ceiling = _blob(work, min(64 * MiB, sizes[0]), 20_000 + n)
            row["store.multipart"] = store_multipart_rate(store.client(), store.shared, ceiling)
            ceiling.path.unlink()
            row["failures"] = []
            for size in sizes if "push" in args.only else ():
                for name in order:
                    seed += 1
                    blob = _blob(work, size, seed)
                    measure(row, name, [push_key(size)], partial(push_rate, ports[name], blob))
                    blob.path.unlink()
            for name in order if "pull" in args.only else ():
                pull = partial(pull_rate, ports[name], pulled, PULL_STREAMS, args.pull_reps)
                measure(row, name, ["pull"], pull)
            for name in order if "small" in args.only else ():
                small = partial(small_requests, ports[name], args.seconds, script)
                measure(row, name, ["small", "small.p99"], small)
            for i, name in enumerate(order if "images" in args.only else ()):
                first = (n * 2 + i + 1) * 1_000_000  # fresh images every time: nothing is there yet
                measure(
                    row, name, ["images", "images.cpu"], partial(images_rate, ports[name], first, args.images)
                )
            row["load_after"] = load()
            print(json.dumps(row), file=sys.stderr, flush=True)
            result["rounds"].append(row)
        result["load_after"] = load()
    finally:
        if distribution is not None:
            distribution.stop()
        cluster.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
