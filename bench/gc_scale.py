"""Garbage collection at scale: dockyard against distribution 2.8.2 on identical stores.

``python -m bench.gc_scale [--images 3000] [--tmpdir DIR]`` writes a store in distribution's
layout directly (each image: a config, two layers of its own and one shared base layer, and a
manifest; every third image then loses its tag and revision, so its blobs become garbage), copies
it, and runs ``dockyard gc --root`` on one copy and ``docker-registry garbage-collect`` on the
other, reporting wall time, peak RSS (the collector process, from wait4) and what each removed.
Both see the same unreferenced blobs; dockyard runs with its grace period at 0 on content made
an hour old, distribution with the registry stopped (it needs that).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

V2 = "docker/registry/v2"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(root: Path, data: bytes) -> str:
    hex_ = hashlib.sha256(data).hexdigest()
    path = root / V2 / "blobs/sha256" / hex_[:2] / hex_ / "data"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hex_


def _link(path: Path, hex_: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"sha256:{hex_}")


def build_store(root: Path, images: int) -> dict[str, int]:
    base = _blob(root, b"shared base layer" * 1000)
    kept = deleted = 0
    for i in range(images):
        repo = root / V2 / "repositories" / f"team-{i % 50}" / f"app-{i % 7}"
        config = json.dumps({"architecture": "amd64", "os": "linux", "image": i}).encode()
        layers = [b"layer a %d " % i * 200, b"layer b %d " % i * 100]
        descs = []
        for data in [config, *layers]:
            hex_ = _blob(root, data)
            _link(repo / "_layers/sha256" / hex_ / "link", hex_)
            descs.append(
                {"mediaType": "application/octet-stream", "digest": f"sha256:{hex_}", "size": len(data)}
            )
        _link(repo / "_layers/sha256" / base / "link", base)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {**descs[0], "mediaType": "application/vnd.oci.image.config.v1+json"},
                "layers": [
                    *descs[1:],
                    {"mediaType": "application/octet-stream", "digest": f"sha256:{base}", "size": 17000},
                ],
            }
        ).encode()
        m = _blob(root, manifest)
        if i % 3 == 2:
            deleted += 1  # deleted image: no revision, no tag; its blobs are garbage
            continue
        kept += 1
        _link(repo / "_manifests/revisions/sha256" / m / "link", m)
        tag = repo / "_manifests/tags" / f"v{i}"
        _link(tag / "current/link", m)
        _link(tag / "index/sha256" / m / "link", m)
    old = time.time() - 3600
    blobs = 0
    for directory, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(directory, name), (old, old))
        blobs += "data" in files
    return {"images_kept": kept, "images_deleted": deleted, "blobs": blobs}


def count_blobs(root: Path) -> int:
    return sum("data" in files for _, _, files in os.walk(root / V2 / "blobs"))


def timed(argv: list[str], workdir: Path) -> dict[str, Any]:
    """Run to completion; wall time and the process's peak RSS (output goes to files, so a
    chatty collector can never block on a full pipe)."""
    out_path, err_path = workdir / "out.txt", workdir / "err.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[0]} failed: {err_path.read_text(errors='replace')[-2000:]}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "stdout": out_path.read_text(errors="replace"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc_scale", description=__doc__)
    parser.add_argument(
        "--images",
        type=int,
        default=3000,
        help="images written (3000 gives ~9,000 kept and garbage blobs plus manifests)",
    )
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    dockyard = str(Path(sys.executable).with_name("dockyard"))
    distribution = shutil.which("docker-registry")
    if distribution is None:
        print("docker-registry is not installed (make debs)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dockyard-gc-scale-", dir=args.tmpdir))
    try:
        t = time.perf_counter()
        store = build_store(work / "dockyard", args.images)
        print(f"store written in {time.perf_counter() - t:.1f}s: {store}", file=sys.stderr)
        shutil.copytree(work / "dockyard", work / "distribution", symlinks=True, copy_function=shutil.copy2)
        config = work / "dockyard.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work / 'dockyard'}\n"
            "  maintenance:\n    gc:\n      grace: 0s\n"
        )
        dist_config = work / "distribution.yml"
        dist_config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work / 'distribution'}\n"
            "  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n"
        )
        ours = timed([dockyard, "gc", "--config", str(config), "--json"], work)
        print(f"dockyard gc: {ours['seconds']}s", file=sys.stderr)
        report = json.loads(ours.pop("stdout"))
        theirs = timed([distribution, "garbage-collect", str(dist_config)], work)
        tail = theirs.pop("stdout").strip().splitlines()[-1:]
        result = {
            "store": store,
            "dockyard": {
                **ours,
                "blobs_deleted": len(report["blobs_deleted"]),
                "bytes_freed": report["bytes_freed"],
                "blobs_left": count_blobs(work / "dockyard"),
            },
            "distribution": {**theirs, "summary": tail, "blobs_left": count_blobs(work / "distribution")},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
