"""The pull-through cache: dockyard against distribution 2.8.2 in proxy mode, one upstream.

``python -m bench.proxy [--rounds 3] [--size-mib 300] [--layers 5] [--clients 16] [--tmpdir DIR]``

The upstream is distribution 2.8.2 (plain, access log on: it is what counts the bytes each cache
fetches) holding a ``--layers``-layer image of ``--size-mib`` random bytes, and a second
one-layer image for the time to first byte. Every round starts both caches fresh (empty storage
roots), configured the same way: ``proxy.remoteurl`` pointing at the upstream, nothing else
(dockyard: ``--workers 2``). Steps, each run on one cache and then the other (the order flips
every round):

* **TTFB cold blob**: ``curl`` time to the first body byte of a blob neither cache holds (↓);
* **cold pull**: the manifest, then the layers, 3 at a time (as docker does), nothing cached (↓);
* **warm pull**: the same again, all cached (↓);
* **16 concurrent cold pulls** (fresh caches again): ``--clients`` independent clients pulling the
  image at once; wall time (↓) and the bytes the upstream sent (↓; the image once is ideal);
* **hosted** (dockyard only): the warm cache's store served by a plain dockyard (no proxy
  section): what "as fast as hosted content" compares with.

Ratios are per round (paired), reported as the median with the min-max spread; > 1 means
dockyard is better. Every download is checked for status and size.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data import BlobFile, make_blob_file
from bench.figures import push_monolithic
from bench.httpclient import Connection
from bench.servers import (
    DISTRIBUTION,
    DOCKYARD,
    Server,
    distribution_version,
    find_distribution,
    find_dockyard,
)

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REPO = "library/bench"
TTFB_REPO = "library/first-byte"
# Combined log format: the request, status, bytes, referer, then the user agent, which tells the
# two caches apart (dockyard's upstream client is httpx; distribution's is Go's).
ACCESS = re.compile(r'"(GET|HEAD) (\S+) HTTP/[\d.]+" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"')


@dataclass(frozen=True)
class Pushed:
    repo: str
    manifest: bytes
    digest: str
    blobs: list[BlobFile]  # config first, then the layers


class Role(Server):
    """A bench server with a role: the upstream (access log on) or a cache (``proxy.remoteurl``),
    or dockyard on a store without the proxy section (``remote`` None)."""

    def __init__(
        self, name: str, workdir: Path, root: Path, *, remote: str | None, upstream: bool = False
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        binary = find_dockyard() if name == DOCKYARD else find_distribution()
        super().__init__(name, workdir, root, binary=binary, workers=2, fsync=False)
        self.remote = remote
        self.upstream = upstream

    def config(self) -> dict[str, Any]:
        config = super().config()
        if self.upstream:
            config["log"] = {"level": "warn", "accesslog": {"disabled": False}}
        if self.remote is not None:
            config["proxy"] = {"remoteurl": self.remote}
            if self.name == DOCKYARD:
                config["proxy"]["spooldirectory"] = str(self.workdir / "spool")
        return config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _digest_of(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(port: int, repo: str, layers: list[BlobFile], config_path: Path) -> Pushed:
    config_bytes = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    config_path.write_bytes(config_bytes)
    config = BlobFile(config_path, len(config_bytes), _digest_of(config_bytes))
    blobs = [config, *layers]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": OCI_LAYER, "digest": b.digest, "size": b.size} for b in layers],
        }
    ).encode()
    with Connection(port) as conn:
        for blob in blobs:
            push_monolithic(conn, repo, blob)
        conn.request(
            "PUT", f"/v2/{repo}/manifests/latest", {"Content-Type": OCI_MANIFEST}, body=manifest
        ).expect(201, what="PUT manifest")
    return Pushed(repo, manifest, _digest_of(manifest), blobs)


def _curl(urls: list[tuple[str, int]], parallel: int) -> None:
    """Download ``urls`` to /dev/null, ``parallel`` at a time, each checked for 200 and its size."""
    cmd = [
        "curl",
        "-s",
        "--parallel",
        "--parallel-max",
        str(parallel),
        "-w",
        "%{http_code} %{size_download}\\n",
    ]
    for url, _ in urls:
        cmd += [url, "-o", "/dev/null"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    got = sorted(tuple(line.split()) for line in out.stdout.splitlines() if line.strip())
    want = sorted(("200", str(size)) for _, size in urls)
    if out.returncode != 0 or got != want:
        raise RuntimeError(f"curl: exit {out.returncode}, got {got}, expected {want}: {out.stderr[-500:]}")


def pull(server: Role, image: Pushed) -> float:
    """Seconds for one client's pull: the manifest, then every blob, 3 at a time."""
    t0 = time.perf_counter()
    with Connection(server.port) as conn:
        r = conn.request("GET", f"/v2/{image.repo}/manifests/latest", {"Accept": OCI_MANIFEST})
        r.expect(200, what="GET manifest")
    _curl([(f"{server.url}/v2/{image.repo}/blobs/{b.digest}", b.size) for b in image.blobs], 3)
    return time.perf_counter() - t0


def ttfb(server: Role, image: Pushed, blob: BlobFile) -> float:
    url = f"{server.url}/v2/{image.repo}/blobs/{blob.digest}"
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_starttransfer}", url],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    code, size, first = out.stdout.split()
    if code != "200" or int(size) != blob.size:
        raise RuntimeError(f"TTFB pull: HTTP {code}, {size} bytes (expected 200, {blob.size})")
    return float(first)


def concurrent_pulls(server: Role, image: Pushed, clients: int) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: pull(server, image), range(clients)))
    return time.perf_counter() - t0


class AccessLog:
    """The upstream's access log, from a mark: the blob bytes it sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def settle(self, quiet: float = 1.5, most: float = 180.0) -> None:
        """Wait until the upstream has logged nothing for ``quiet`` seconds: a cache may go on
        fetching after its client is done (distribution stores a blob with a second fetch in the
        background), and that must neither load the next step nor count in its window."""
        deadline = time.monotonic() + most
        size, since = self.path.stat().st_size, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.path.stat().st_size
            if now != size:
                size, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def blob_bytes(self, cache: str) -> int:
        """Blob bytes the upstream sent to ``cache`` (told apart by user agent) since the mark."""
        with open(self.path, errors="replace") as f:
            f.seek(self.offset)
            text = f.read()
        total = 0
        for method, path, status, size, agent in ACCESS.findall(text):
            ours = "python-httpx" in agent
            if (ours != (cache == DOCKYARD)) or method != "GET" or "/blobs/" not in path:
                continue
            if status == "200" and size != "-":
                total += int(size)
        return total


def _caches(base: Path, remote: str, tag: str) -> dict[str, Role]:
    return {
        name: Role(name, base / f"{tag}-{name}", base / f"{tag}-{name}" / "root", remote=remote)
        for name in (DOCKYARD, DISTRIBUTION)
    }


def run_round(
    base: Path, upstream: Role, log: AccessLog, image: Pushed, first: Pushed, n: int, clients: int
) -> dict[str, dict[str, float]]:
    order = [DOCKYARD, DISTRIBUTION] if n % 2 == 0 else [DISTRIBUTION, DOCKYARD]
    out: dict[str, dict[str, float]] = {name: {} for name in order}
    caches = _caches(base, upstream.url, f"r{n}")
    try:
        for name in order:
            caches[name].start()
        for name in order:
            # As a client does: the manifest first (which also wakes the cache's workers up),
            # then each layer; the median of the two layers' first bytes.
            with Connection(caches[name].port) as conn:
                r = conn.request("GET", f"/v2/{first.repo}/manifests/latest", {"Accept": OCI_MANIFEST})
                r.expect(200, what="GET manifest")
            out[name]["ttfb_s"] = statistics.median(ttfb(caches[name], first, b) for b in first.blobs[1:])
            log.settle()
        for name in order:
            log.mark()
            out[name]["cold_s"] = pull(caches[name], image)
            log.settle()
            out[name]["cold_upstream_mib"] = log.blob_bytes(name) / MiB
        for name in order:
            out[name]["warm_s"] = min(pull(caches[name], image) for _ in range(2))
    finally:
        for cache in caches.values():
            cache.stop()
    hosted = Role(DOCKYARD, base / f"r{n}-hosted", caches[DOCKYARD].root, remote=None)
    hosted.start()
    try:
        out[DOCKYARD]["hosted_s"] = min(pull(hosted, image) for _ in range(2))
    finally:
        hosted.stop()
    crowd = _caches(base, upstream.url, f"r{n}-crowd")
    try:
        for name in order:
            crowd[name].start()
        for name in order:
            log.mark()
            out[name]["crowd_s"] = concurrent_pulls(crowd[name], image, clients)
            log.settle()
            out[name]["crowd_upstream_mib"] = log.blob_bytes(name) / MiB
    finally:
        for cache in crowd.values():
            cache.stop()
    for tag in (f"r{n}", f"r{n}-crowd", f"r{n}-hosted"):
        for path in base.glob(f"{tag}-*"):
            shutil.rmtree(path, ignore_errors=True)
    return out


FIGURES = [
    ("ttfb_s", "time to first byte, cold blob (s)"),
    ("cold_s", "cold pull (s)"),
    ("warm_s", "warm pull (s)"),
    ("crowd_s", "{clients} concurrent cold pulls (s)"),
    ("cold_upstream_mib", "upstream bytes, cold pull (MiB)"),
    ("crowd_upstream_mib", "upstream bytes, {clients} concurrent cold pulls (MiB)"),
]


def report(rounds: list[dict[str, dict[str, float]]], clients: int, image_mib: float) -> str:
    lines = [
        f"image: {image_mib:.0f} MiB; {len(rounds)} rounds; "
        "ratio = distribution/dockyard (> 1: dockyard better)",
        "",
        "| figure | dockyard | distribution 2.8.2 | ratio (min-max) |",
        "|---|---|---|---|",
    ]
    for key, label in FIGURES:
        ours = [r[DOCKYARD][key] for r in rounds]
        theirs = [r[DISTRIBUTION][key] for r in rounds]
        ratios = [t / o for o, t in zip(ours, theirs, strict=True) if o > 0]
        spread = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-"
        lines.append(
            f"| {label.format(clients=clients)} | {statistics.median(ours):.3f} | "
            f"{statistics.median(theirs):.3f} | {spread} |"
        )
    warm = [r[DOCKYARD]["warm_s"] for r in rounds]
    hosted = [r[DOCKYARD]["hosted_s"] for r in rounds]
    ratios = [h / w for w, h in zip(warm, hosted, strict=True)]
    lines.append(
        f"| dockyard warm pull vs hosted content (s) | {statistics.median(warm):.3f} | hosted "
        f"{statistics.median(hosted):.3f} | {statistics.median(ratios):.2f}x "
        f"({min(ratios):.2f}-{max(ratios):.2f}) |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=300, help="the image's size (default 300)")
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tmpdir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--json", metavar="FILE", help="write every round's figures")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="dockyard-bench-proxy-", dir=args.tmpdir))
    print(f"bench.proxy: {distribution_version(find_distribution())}; work in {base}", flush=True)
    upstream = Role(DISTRIBUTION, base / "upstream", base / "upstream" / "root", remote=None, upstream=True)
    try:
        layer = args.size_mib * MiB // args.layers
        files = [make_blob_file(base / f"layer{i}", layer, seed=i) for i in range(args.layers)]
        ttfb_files = [make_blob_file(base / f"first-byte{i}", 32 * MiB, seed=1000 + i) for i in range(2)]
        upstream.start()
        image = push_image(upstream.port, REPO, files, base / "config.json")
        first = push_image(upstream.port, TTFB_REPO, ttfb_files, base / "config-first.json")
        for f in [*files, *ttfb_files]:
            f.path.unlink()
        log = AccessLog(upstream.log_path)
        rounds = []
        for n in range(args.rounds):
            began = time.monotonic()
            rounds.append(run_round(base, upstream, log, image, first, n, args.clients))
            print(
                f"round {n + 1}/{args.rounds} in {time.monotonic() - began:.0f} s: {json.dumps(rounds[-1])}",
                flush=True,
            )
        print()
        print(report(rounds, args.clients, sum(b.size for b in image.blobs) / MiB))
        if args.json:
            Path(args.json).write_text(json.dumps({"rounds": rounds, "args": vars(args)}, indent=2))
    finally:
        upstream.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
