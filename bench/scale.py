"""Pagination at scale: does a page deep into a long list cost what the first page costs?

``python -m bench.scale [--small 1000] [--large 100000 50000] [--tmpdir DIR]`` writes two stores in
distribution's layout (``bench.data.build_layout``): one with ``--small`` tags in one repository and
``--small`` repositories, one with ``--large`` tags and repositories. For each it starts ``dockyard
serve`` (2 workers) and times, with one keep-alive client: the tags list and the catalog, first page
(``n=100``) and a page deep in the list (``last=`` 80 % of the way), each as the median of 30 requests
after the first one (reported separately: it builds the per-process cache).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.data import CATALOG_PREFIX, TAGS_REPO, build_layout

REPEAT = 30


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time(client: httpx.Client, path: str, expect: int) -> dict[str, float]:
    def once() -> float:
        started = time.perf_counter()
        r = client.get(path)
        took = (time.perf_counter() - started) * 1000
        body = r.json()
        got = len(body.get("tags") or body.get("repositories") or [])
        if r.status_code != 200 or got != expect:
            raise RuntimeError(f"{path}: {r.status_code}, {got} entries (expected {expect})")
        return took

    first = once()
    rest = [once() for _ in range(REPEAT)]
    return {"first_ms": round(first, 2), "median_ms": round(statistics.median(rest), 2)}


def measure(work: Path, tags: int, repos: int) -> dict[str, Any]:
    root = work / f"store-{tags}-{repos}"
    started = time.perf_counter()
    build_layout(root, repos, tags)
    written = time.perf_counter() - started
    port = _port()
    config = work / f"config-{tags}.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root}\n  maintenance:\n    gc:\n      enabled: false\n"
        "ui:\n  enabled: false\n"
    )
    dockyard = str(Path(sys.executable).with_name("dockyard"))
    proc = subprocess.Popen(
        [dockyard, "serve", "--config", str(config), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for _ in range(300):
                try:
                    if client.get("/v2/").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(1.5)  # let the tags directory age past the quiet period so it may be cached
            deep_tag = f"t{int(tags * 0.8):05d}"
            deep_repo = f"{CATALOG_PREFIX}/r{int(repos * 0.8):05d}"
            return {
                "tags": tags,
                "repositories": repos,
                "layout_written_s": round(written, 1),
                "tags_first_page": _time(client, f"/v2/{TAGS_REPO}/tags/list?n=100", 100),
                "tags_deep_page": _time(client, f"/v2/{TAGS_REPO}/tags/list?n=100&last={deep_tag}", 100),
                "catalog_first_page": _time(client, "/v2/_catalog?n=100", 100),
                "catalog_deep_page": _time(client, f"/v2/_catalog?n=100&last={deep_repo}", 100),
            }
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, nargs=2, default=[100_000, 50_000], metavar=("TAGS", "REPOS"))
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dockyard-scale-", dir=args.tmpdir))
    try:
        results = [measure(work, args.small, args.small), measure(work, *args.large)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
