"""The measured work. Each *step* runs against one server and returns figure values; the
runner alternates servers step by step and brackets every step with CPU readings."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data import (
    ACCEPT,
    OCI_MANIFEST,
    SMALL_REPO,
    TAGS_REPO,
    BlobFile,
    Image,
    Layout,
    MiB,
    blob_data_path,
)
from bench.httpclient import AsyncConnection, Connection, HTTPFailure, path_of, with_digest
from bench.lagprobe import LagProbe, percentile
from bench.model import Figure
from bench.servers import Server
from bench.wrkrun import LoadResult, run_ab, run_wrk

PUSH_REPO = "push/blobs"
CHUNK = 8 * MiB


@dataclass
class Params:
    quick: bool
    rounds: int
    load_seconds: int
    concurrency: tuple[int, ...]
    push_sizes: tuple[int, ...]
    push_reps: dict[int, int]
    tls_push_reps: dict[int, int]  # the TLS configuration's pushes (blobs the plain pushes also send)
    extra_rounds: int | None  # rounds of the accel and TLS configurations (None: every round)
    pull_single_reps: int
    pull_streams: int
    pull_stream_reps: int
    images: int
    image_clients: int
    catalog_repos: int
    tags: int
    latency_budget: float
    paging_cap: float

    @property
    def pull_size(self) -> int:
        return max(self.push_sizes)


def params(quick: bool) -> Params:
    if quick:
        return Params(
            quick=True,
            rounds=2,
            load_seconds=1,
            concurrency=(1, 16, 64),
            push_sizes=(1 * MiB, 64 * MiB),
            # Enough 1 MiB pushes for their time and CPU to be more than a few clock ticks.
            push_reps={1 * MiB: 64, 64 * MiB: 2},
            tls_push_reps={64 * MiB: 1},
            extra_rounds=1,  # four more server starts per round would take quick past 3 minutes
            pull_single_reps=4,
            pull_streams=8,
            pull_stream_reps=1,
            images=300,
            image_clients=16,
            catalog_repos=2000,
            tags=2000,
            latency_budget=1.0,
            paging_cap=30.0,
        )
    return Params(
        quick=False,
        rounds=3,
        load_seconds=2,
        concurrency=(1, 16, 64),
        push_sizes=(1 * MiB, 64 * MiB, 512 * MiB),
        push_reps={1 * MiB: 128, 64 * MiB: 3, 512 * MiB: 1},
        tls_push_reps={64 * MiB: 3, 512 * MiB: 1},
        extra_rounds=None,
        pull_single_reps=2,
        pull_streams=8,
        pull_stream_reps=1,
        images=2000,
        image_clients=16,
        catalog_repos=10000,
        tags=10000,
        latency_budget=2.0,
        paging_cap=60.0,
    )


@dataclass
class Context:
    params: Params
    workdir: Path
    lua: Path
    layout: Layout | None = None
    blobs: dict[tuple[int, str, int], BlobFile] = field(default_factory=dict)  # (size, mode, rep)
    images: list[Image] = field(default_factory=list)


StepFn = Callable[[Server], dict[str, Any]]


@dataclass
class Step:
    """One unit of work run on each server in turn: ``fn`` returns {figure key: value}, plus
    optional ``"_extra"`` (dict merged into every sample) and ``"_work"`` (requests done)."""

    name: str
    figures: list[Figure]
    fn: StepFn
    setup: Callable[[Server], None] | None = None


def size_label(size: int) -> str:
    return f"{size // MiB} MiB"


def median_ms(key: str, times: list[float]) -> dict[str, Any]:
    """A latency figure: the median of repeated timings (seconds) in milliseconds."""
    return {key: statistics.median(times) * 1000, "_work": len(times), "_extra": {"repeats": len(times)}}


# --------------------------------------------------------------------------- small requests


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    method: str
    path: str
    accept: str = ""


def endpoints(layout: Layout) -> list[Endpoint]:
    manifest = f"/v2/{SMALL_REPO}/manifests"
    return [
        Endpoint("v2", "GET /v2/", "GET", "/v2/"),
        Endpoint("get-manifest-tag", "GET manifest by tag", "GET", f"{manifest}/latest", ACCEPT),
        Endpoint(
            "get-manifest-digest",
            "GET manifest by digest",
            "GET",
            f"{manifest}/{layout.manifest_digest}",
            ACCEPT,
        ),
        Endpoint("head-manifest-tag", "HEAD manifest by tag", "HEAD", f"{manifest}/latest", ACCEPT),
        Endpoint(
            "head-manifest-digest",
            "HEAD manifest by digest",
            "HEAD",
            f"{manifest}/{layout.manifest_digest}",
            ACCEPT,
        ),
        Endpoint("head-blob", "HEAD blob", "HEAD", f"/v2/{SMALL_REPO}/blobs/{layout.layer_digest}"),
        Endpoint("tags-list", "GET tags list (3 tags)", "GET", f"/v2/{SMALL_REPO}/tags/list"),
    ]


def load(ctx: Context, server: Server, ep: Endpoint, connections: int) -> LoadResult:
    url = server.url_for(ep.path)
    if ep.method == "HEAD":
        return run_ab(
            ctx.workdir, url, connections=connections, seconds=ctx.params.load_seconds, accept=ep.accept
        )
    return run_wrk(
        ctx.lua,
        url,
        method=ep.method,
        connections=connections,
        seconds=ctx.params.load_seconds,
        accept=ep.accept,
    )


def request_steps(ctx: Context) -> list[Step]:
    assert ctx.layout is not None
    steps = []
    for ep in endpoints(ctx.layout):
        for c in ctx.params.concurrency:
            base = f"req.{ep.key}.c{c}"
            label = f"{ep.label}, c={c}"
            figs = [
                Figure(f"{base}.rps", "requests", f"{label}: throughput", "req/s", True),
                Figure(f"{base}.p50", "requests", f"{label}: p50 latency", "ms", False),
                Figure(f"{base}.p99", "requests", f"{label}: p99 latency", "ms", False),
            ]

            def fn(server: Server, ep: Endpoint = ep, c: int = c, base: str = base) -> dict[str, Any]:
                with server.connect(timeout=30) as conn:  # refuse to measure a failing request
                    headers = {"Accept": ep.accept} if ep.accept else None
                    conn.request(ep.method, ep.path, headers).expect(200, what=f"{ep.method} {ep.path}")
                r = load(ctx, server, ep, c)
                if r.requests == 0:
                    raise RuntimeError(f"{r.tool}: no request completed")
                if r.failed:
                    raise RuntimeError(f"{r.tool}: {r.failed} failed of {r.requests} ({r.errors})")
                return {
                    f"{base}.rps": r.rps,
                    f"{base}.p50": r.p50_ms,
                    f"{base}.p99": r.p99_ms,
                    "_work": r.requests,
                    "_extra": {
                        "tool": r.tool,
                        "requests": r.requests,
                        "seconds": r.seconds,
                        "max_ms": r.max_ms,
                    },
                }

            steps.append(Step(base, figs, fn))
    return steps


# --------------------------------------------------------------------------- catalog and tags


def timed_repeats(budget: float, fn: Callable[[], None], least: int = 3, most: int = 200) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < most and (len(times) < least or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def next_link(link: str) -> str | None:
    if 'rel="next"' not in link:
        return None
    return path_of(link[link.index("<") + 1 : link.index(">")])


def catalog_steps(ctx: Context) -> list[Step]:
    assert ctx.layout is not None
    layout, p = ctx.layout, ctx.params
    n = len(layout.repos)
    first = Figure(
        "catalog.first", "catalog", f"catalog first page n=100 ({n:,} repos), sequential", "ms", False
    )
    paging = Figure(
        "catalog.all", "catalog", f"catalog: page through all {n:,} repos (n=100, Link)", "s", False
    )
    tags = Figure("tags.10k", "catalog", f"tags list with {layout.tags:,} tags, sequential", "ms", False)

    def first_page(server: Server) -> dict[str, Any]:
        with server.connect() as conn:

            def once() -> None:
                r = conn.request("GET", "/v2/_catalog?n=100").expect(200, what="catalog")
                got = r.body.count(b'"')
                if got < 2 * 100:
                    raise HTTPFailure(f"catalog first page has too few names ({r.body[:200]!r})")

            times = timed_repeats(p.latency_budget, once)
        return median_ms(first.key, times)

    def all_pages(server: Server) -> dict[str, Any]:
        import json

        names: list[str] = []
        target: str | None = "/v2/_catalog?n=100"
        pages = 0
        start = time.perf_counter()
        with server.connect() as conn:
            while target is not None:
                r = conn.request("GET", target).expect(200, what=f"catalog page {pages + 1}")
                names += json.loads(r.body)["repositories"]
                pages += 1
                target = next_link(r.header("link"))
                elapsed = time.perf_counter() - start
                if target is not None and elapsed > p.paging_cap:
                    raise RuntimeError(
                        f"gave up after {elapsed:.0f}s at page {pages} of ~{n // 100 + 1} "
                        f"(extrapolated total ~ {elapsed / pages * (n / 100):.0f}s)"
                    )
        elapsed = time.perf_counter() - start
        expected = set(layout.repos)
        if not expected.issubset(names) or len(names) != len(set(names)):
            raise RuntimeError(
                f"paging returned {len(names)} names ({len(set(names))} distinct), expected {n}"
            )
        return {paging.key: elapsed, "_work": pages, "_extra": {"pages": pages, "names": len(names)}}

    def tags_list(server: Server) -> dict[str, Any]:
        import json

        with server.connect() as conn:

            def once() -> None:
                r = conn.request("GET", f"/v2/{TAGS_REPO}/tags/list").expect(200, what="tags list")
                got = len(json.loads(r.body)["tags"])
                if got != layout.tags:
                    raise HTTPFailure(f"tags list has {got} tags, expected {layout.tags}")

            times = timed_repeats(p.latency_budget, once)
        return median_ms(tags.key, times)

    return [
        Step("catalog.first", [first], first_page),
        Step("catalog.all", [paging], all_pages),
        Step("tags.10k", [tags], tags_list),
    ]


# --------------------------------------------------------------------------- blob push and pull


def push_monolithic(conn: Connection, repo: str, blob: BlobFile) -> None:
    loc = (
        conn.request("POST", f"/v2/{repo}/blobs/uploads/").expect(202, what="POST upload").header("location")
    )
    with open(blob.path, "rb") as f:
        conn.request(
            "PUT",
            with_digest(loc, blob.digest),
            {"Content-Type": "application/octet-stream"},
            file=(f, 0, blob.size),
        ).expect(201, what="PUT monolithic")


def push_chunked(conn: Connection, repo: str, blob: BlobFile, chunk: int = CHUNK) -> None:
    loc = (
        conn.request("POST", f"/v2/{repo}/blobs/uploads/").expect(202, what="POST upload").header("location")
    )
    with open(blob.path, "rb") as f:
        for off in range(0, blob.size, chunk):
            n = min(chunk, blob.size - off)
            r = conn.request(
                "PATCH",
                path_of(loc),
                {"Content-Type": "application/octet-stream", "Content-Range": f"{off}-{off + n - 1}"},
                file=(f, off, n),
            ).expect(202, what=f"PATCH {off}-{off + n - 1}")
            loc = r.header("location") or loc
    conn.request("PUT", with_digest(loc, blob.digest)).expect(201, what="PUT close chunked")


def check_blob(conn: Connection, repo: str, blob: BlobFile) -> None:
    r = conn.request("HEAD", f"/v2/{repo}/blobs/{blob.digest}").expect(200, what="HEAD pushed blob")
    if int(r.header("content-length") or -1) != blob.size:
        raise HTTPFailure(f"pushed blob has length {r.header('content-length')}, expected {blob.size}")


def gb_cpu(key: str, label: str) -> Figure:
    """Server CPU seconds (every process serving, nginx included) per GB moved by a step."""
    return Figure(f"{key}.cpu", "cpu", f"{label}: server CPU per GB", "CPU s/GB", False)


def push_steps(
    ctx: Context, prefix: str = "", label: str = "", sizes: dict[int, int] | None = None
) -> list[Step]:
    """Blob pushes; ``sizes`` maps size to repetitions (default: the run's push sizes), ``prefix``
    and ``label`` name the configuration the figures belong to."""
    steps = []
    keep = pull_blob(ctx)
    for size, reps in (sizes or ctx.params.push_reps).items():
        for mode in ("monolithic", "chunked"):
            desc = "POST+PUT" if mode == "monolithic" else "PATCH 8 MiB chunks + PUT"
            fig = Figure(
                f"{prefix}push.{mode}.{size // MiB}M",
                prefix.rstrip(".") or "push",
                f"{label}blob push {mode} ({desc}), {size_label(size)} x{reps}",
                "MB/s",
                True,
            )
            cpu = gb_cpu(fig.key, f"{label}push {mode} {size_label(size)}")

            def fn(
                server: Server,
                size: int = size,
                mode: str = mode,
                reps: int = reps,
                key: str = fig.key,
                cpu_key: str = cpu.key,
            ) -> dict[str, Any]:
                blobs = [ctx.blobs[(size, mode, i)] for i in range(reps)]
                push = push_monolithic if mode == "monolithic" else push_chunked
                times = []
                cpu0 = server.cpu_seconds()
                with server.connect() as conn:
                    for blob in blobs:
                        t0 = time.perf_counter()
                        push(conn, PUSH_REPO, blob)
                        times.append(time.perf_counter() - t0)
                    cpu1 = server.cpu_seconds()
                    for blob in blobs:
                        check_blob(conn, PUSH_REPO, blob)
                # The pushed bytes go (the blob the pulls read aside): storage that grows with
                # every step would put the later, larger pushes in memory that costs this VM far
                # more to touch (bench/README.md, "Storage footprint").
                for blob in blobs:
                    if blob.digest != keep.digest:  # FileNotFoundError: not where it was stored
                        blob_data_path(server.root, blob.digest).unlink()
                total = sum(times)
                return {
                    key: size * reps / total / 1e6,
                    cpu_key: (cpu1 - cpu0) / (size * reps / 1e9),
                    "_work": reps,
                    "_extra": {"seconds": times},
                }

            steps.append(Step(fig.key, [fig, cpu], fn))
    return steps


def _pull(server: Server, blob: BlobFile, streams: int, reps: int) -> tuple[float, float]:
    """``streams`` curl processes, each downloading the blob ``reps`` times: MB/s, and the
    server's CPU seconds per GB sent."""
    url = server.url_for(f"/v2/{PUSH_REPO}/blobs/{blob.digest}")
    cmd = ["curl", "-s", "-w", "%{http_code} %{size_download}\\n"]
    if server.tls is not None:
        cmd += ["--cacert", str(server.tls.certificate)]
    for _ in range(reps):
        cmd += [url, "-o", "/dev/null"]
    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(streams)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    elapsed = time.perf_counter() - t0
    cpu = server.cpu_seconds() - cpu0
    for p, out in zip(procs, outs, strict=True):
        lines = out.split()
        results = list(zip(lines[::2], lines[1::2], strict=True))
        if p.returncode != 0 or len(results) != reps:
            raise RuntimeError(f"curl exited {p.returncode} after {len(results)} of {reps} downloads")
        for code, size in results:
            if code != "200" or int(size) != blob.size:
                raise RuntimeError(f"curl got HTTP {code}, {size} bytes (expected 200, {blob.size})")
    total = blob.size * streams * reps
    return total / elapsed / 1e6, cpu / (total / 1e9)


def pull_blob(ctx: Context) -> BlobFile:
    """The blob the pull figures read: the first chunked push of the largest size, the last push
    of the phase, so no earlier push shares the storage with it (bench/README.md, "Storage
    footprint")."""
    return ctx.blobs[(ctx.params.pull_size, "chunked", 0)]


def pull_steps(ctx: Context, prefix: str = "", label: str = "") -> list[Step]:
    p = ctx.params
    blob = pull_blob(ctx)
    group = prefix.rstrip(".") or "pull"
    single = Figure(
        f"{prefix}pull.single",
        group,
        f"{label}blob pull, 1 stream ({size_label(blob.size)} x{p.pull_single_reps})",
        "MB/s",
        True,
    )
    parallel = Figure(
        f"{prefix}pull.parallel",
        group,
        f"{label}blob pull, {p.pull_streams} parallel streams ({size_label(blob.size)} each)",
        "MB/s",
        True,
    )
    single_cpu = gb_cpu(single.key, f"{label}pull 1 stream")
    parallel_cpu = gb_cpu(parallel.key, f"{label}pull {p.pull_streams} streams")

    def ensure(server: Server) -> None:
        with server.connect() as conn:
            if conn.request("HEAD", f"/v2/{PUSH_REPO}/blobs/{blob.digest}").status != 200:
                push_monolithic(conn, PUSH_REPO, blob)

    def run(server: Server, streams: int, reps: int, key: str, cpu_key: str) -> dict[str, Any]:
        rate, cpu = _pull(server, blob, streams, reps)
        return {key: rate, cpu_key: cpu, "_work": streams * reps}

    return [
        Step(
            single.key,
            [single, single_cpu],
            lambda s: run(s, 1, p.pull_single_reps, single.key, single_cpu.key),
            setup=ensure,
        ),
        Step(
            parallel.key,
            [parallel, parallel_cpu],
            lambda s: run(s, p.pull_streams, p.pull_stream_reps, parallel.key, parallel_cpu.key),
            setup=ensure,
        ),
    ]


# --------------------------------------------------------------------------- many small images


async def _push_images(port: int, images: list[Image], clients: int) -> int:
    todo: Iterator[Image] = iter(images)
    requests = 0

    async def client() -> None:
        nonlocal requests
        conn = AsyncConnection(port)
        try:
            for img in todo:
                for digest, content in img.blobs:
                    r = await conn.request("HEAD", f"/v2/{img.repo}/blobs/{digest}")
                    requests += 1
                    if r.status == 200:
                        continue
                    r.expect(404, what="HEAD layer")
                    r = await conn.request("POST", f"/v2/{img.repo}/blobs/uploads/")
                    loc = r.expect(202, what="POST upload").header("location")
                    r = await conn.request(
                        "PUT", with_digest(loc, digest), {"Content-Type": "application/octet-stream"}, content
                    )
                    r.expect(201, what="PUT blob")
                    requests += 2
                r = await conn.request(
                    "PUT", f"/v2/{img.repo}/manifests/{img.tag}", {"Content-Type": OCI_MANIFEST}, img.manifest
                )
                r.expect(201, what="PUT manifest")
                requests += 1
                if r.header("docker-content-digest") != img.manifest_digest:
                    raise HTTPFailure(
                        f"manifest digest {r.header('docker-content-digest')} != {img.manifest_digest}"
                    )
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return requests


def run_async(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def image_steps(ctx: Context) -> list[Step]:
    p = ctx.params
    n = len(ctx.images)
    rate = Figure(
        "images.rate", "images", f"{n:,} small images pushed by {p.image_clients} clients", "images/s", True
    )
    cpu = Figure("images.cpu", "images", "server CPU per image pushed", "ms", False)
    lag = Figure("images.lag", "images", "GET /v2/ p99 during the push (event-loop lag probe)", "ms", False)

    def fn(server: Server) -> dict[str, Any]:
        from bench.procstat import client_cpu_seconds

        cpu0, client0 = server.cpu_seconds(), client_cpu_seconds()
        t0 = time.perf_counter()
        with LagProbe(server.port) as probe:
            requests = run_async(_push_images(server.port, ctx.images, p.image_clients))
            elapsed = time.perf_counter() - t0
            server_cpu = server.cpu_seconds() - cpu0
            client_cpu = client_cpu_seconds() - client0
            probes = probe.stop()
        with server.connect() as conn:  # spot-check outside the timing
            for img in ctx.images[:: max(1, n // 20)]:
                r = conn.request("GET", f"/v2/{img.repo}/manifests/{img.tag}", {"Accept": ACCEPT})
                r.expect(200, what="GET pushed manifest")
                if r.body != img.manifest:
                    raise HTTPFailure(f"{img.repo}:{img.tag} came back different")
        return {
            rate.key: n / elapsed,
            cpu.key: server_cpu / n * 1000,
            lag.key: percentile(probes, 0.99) * 1000,
            "_work": requests,
            "_extra": {
                "seconds": elapsed,
                "requests": requests,
                "lag_probes": len(probes),
                "lag_p50_ms": percentile(probes, 0.5) * 1000,
                "client_cpu_ms_per_image": client_cpu / n * 1000,
            },
        }

    return [Step("images", [rate, cpu, lag], fn)]
