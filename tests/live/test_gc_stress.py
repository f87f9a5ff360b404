"""Online garbage collection under load: pushes, re-tags, deletes and pulls from several clients
while collections run again and again; then every image still expected pulls intact and no
unreferenced blob older than the grace period remains. And SIGKILL in the middle of a sweep."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dockyard.testing.images import build_image
from tests.regclient import OCI_MANIFEST, det_bytes, digest_of
from tests.servers.dockyard import LiveRegistry

GRACE = 3.0
CLIENTS = 4
ROUNDS = 14
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


@dataclass
class Expected:
    manifest: bytes
    blobs: dict[str, bytes]


@dataclass
class Figures:
    pushed: int = 0
    push_retries: int = 0
    tags_deleted: int = 0
    manifests_deleted: int = 0
    pulls_verified: int = 0
    gc_runs: int = 0
    gc_blobs_deleted: int = 0
    gc_bytes_freed: int = 0
    gc_manifests_deleted: int = 0
    errors: list[str] = field(default_factory=list)


def _blob_bytes_on_disk(root: Path) -> tuple[int, int]:
    count = size = 0
    for directory, _, files in os.walk(root / "docker/registry/v2/blobs"):
        if "data" in files:
            try:  # polled while a collection deletes: a blob listed a moment ago may be gone
                size += os.stat(os.path.join(directory, "data")).st_size
            except FileNotFoundError:
                continue
            count += 1
    return count, size


def _push_image(
    client: httpx.Client, repo: str, tag: str, blobs: list[bytes]
) -> tuple[bytes, dict[str, bytes]] | None:
    """Push like docker does: HEAD each blob, upload only the missing ones, then the manifest.
    Returns None if the registry refused the manifest (a blob vanished in between)."""
    image = build_image(
        repo, tag, blobs, {"architecture": "amd64", "os": "linux", "tag": tag, "n": len(blobs)}
    )
    for digest, data in image.blobs:
        if client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200:
            continue
        r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        assert r.status_code == 201, (r.status_code, r.text)
    r = client.put(
        f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    if r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN":
        return None
    assert r.status_code == 201, (r.status_code, r.text)
    return image.manifest, image.contents


def _verify_pull(client: httpx.Client, repo: str, tag: str, expected: Expected) -> str | None:
    r = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    if r.status_code != 200 or r.content != expected.manifest:
        return f"{repo}:{tag} manifest {r.status_code}"
    for digest in expected.blobs:
        b = client.get(f"/v2/{repo}/blobs/{digest}")
        if b.status_code != 200 or digest_of(b.content) != digest:
            return f"{repo}:{tag} blob {digest} -> {b.status_code}"
    return None


def _client_work(
    url: str, index: int, expected: dict[tuple[str, str], Expected], figures: Figures, lock: threading.Lock
) -> None:
    rng = random.Random(index)
    repo = f"stress/client-{index}"
    base = det_bytes("shared base layer", 40_000)  # shared by every client and every image
    with httpx.Client(base_url=url, timeout=60) as client:
        for round_ in range(ROUNDS):
            tag = f"t{rng.randrange(3)}"  # re-tagging leaves untagged revisions behind
            layers = [
                base,
                det_bytes(f"{index}-{round_}-a", rng.randrange(1_000, 30_000)),
                det_bytes(f"{index}-{round_}-b", 5_000),
            ]
            for _ in range(5):
                pushed = _push_image(client, repo, tag, layers)
                if pushed is not None:
                    break
                with lock:
                    figures.push_retries += 1
            assert pushed is not None, "push kept failing"
            with lock:
                figures.pushed += 1
                expected[(repo, tag)] = Expected(*pushed)
            action = rng.random()
            if action < 0.2 and len([k for k in expected if k[0] == repo]) > 1:
                victim = rng.choice(sorted(k[1] for k in expected if k[0] == repo and k[1] != tag))
                assert client.delete(f"/v2/{repo}/manifests/{victim}").status_code == 202
                with lock:
                    del expected[(repo, victim)]
                    figures.tags_deleted += 1
            elif action < 0.3:
                digest = digest_of(pushed[0])
                r = client.delete(f"/v2/{repo}/manifests/{digest}")
                assert r.status_code == 202, r.text
                with lock:
                    del expected[(repo, tag)]
                    figures.manifests_deleted += 1
            with lock:
                mine = [(k, v) for k, v in expected.items() if k[0] == repo]
            if mine:
                (r_repo, r_tag), exp = rng.choice(mine)
                problem = _verify_pull(client, r_repo, r_tag, exp)
                with lock:
                    if problem:
                        figures.errors.append(problem)
                    figures.pulls_verified += 1


def _collect(url: str, figures: Figures, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{url}/admin/v1/gc", json=body, timeout=120)
    assert r.status_code in (200, 409), r.text
    report: dict[str, Any] = r.json() if r.status_code == 200 else {}
    if report and not report["dry_run"]:
        figures.gc_runs += 1
        figures.gc_blobs_deleted += len(report["blobs_deleted"])
        figures.gc_bytes_freed += report["bytes_freed"]
        figures.gc_manifests_deleted += len(report["manifests_deleted"])
    return report


def test_gc_under_concurrent_pushes_deletes_and_pulls(tmp_path: Path) -> None:
    config = {
        "storage": {"maintenance": {"gc": {"enabled": False, "grace": f"{GRACE}s"}}},
        "log": {"accesslog": {"disabled": True}},
    }
    expected: dict[tuple[str, str], Expected] = {}
    figures = Figures()
    lock = threading.Lock()
    with LiveRegistry(tmp_path / "reg", config=config) as registry:
        clients = [
            threading.Thread(target=_client_work, args=(registry.url, i, expected, figures, lock))
            for i in range(CLIENTS)
        ]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 240
        while any(t.is_alive() for t in clients) and time.monotonic() < deadline:
            _collect(registry.url, figures, {"deleteUntagged": True})
            time.sleep(0.2)
        for t in clients:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in clients), "clients did not finish"
        before = _blob_bytes_on_disk(registry.root)
        time.sleep(GRACE + 2.5)  # let every leftover age past the grace period and the slack
        final = _collect(registry.url, figures, {"deleteUntagged": True})
        after = _blob_bytes_on_disk(registry.root)

        with httpx.Client(base_url=registry.url, timeout=60) as client:
            problems = [
                p for (repo, tag), exp in expected.items() if (p := _verify_pull(client, repo, tag, exp))
            ]
        assert problems == [] and figures.errors == [], (problems, figures.errors)

        # Nothing unreferenced remains: every stored blob belongs to an image still expected.
        referenced = {digest_of(e.manifest) for e in expected.values()}
        referenced |= {d for e in expected.values() for d in e.blobs}
        stored = set()
        for directory, _, files in os.walk(registry.root / "docker/registry/v2/blobs"):
            if "data" in files:
                stored.add("sha256:" + os.path.basename(directory))
        assert stored == referenced, (sorted(stored - referenced)[:5], sorted(referenced - stored)[:5])
        assert final["blobs_marked"] == len(referenced)
        assert "Traceback" not in registry.log()
    summary = {
        **figures.__dict__,
        "images_expected_at_end": len(expected),
        "blobs_on_disk_before_final_gc": before,
        "blobs_on_disk_after_final_gc": after,
        "bytes_freed_on_disk_by_final_gc": before[1] - after[1],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "gc-stress.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    assert figures.gc_runs >= 3 and figures.pushed == CLIENTS * ROUNDS
    assert figures.gc_blobs_deleted > 0 and figures.gc_manifests_deleted > 0


def test_sigkill_in_the_middle_of_a_sweep(tmp_path: Path) -> None:
    """Thousands of old orphans are being swept when the whole server is killed; after a restart
    every kept image is intact and the next collection finishes the job."""
    config = {
        "storage": {"maintenance": {"gc": {"enabled": False, "grace": "1s"}}, "filesystem": {"fsync": False}},
        "log": {"accesslog": {"disabled": True}},
    }
    registry = LiveRegistry(tmp_path / "reg", config=config).start()
    kept: dict[str, Expected] = {}
    try:
        with httpx.Client(base_url=registry.url, timeout=60) as client:
            for i in range(4):
                layers = [det_bytes(f"kept-{i}", 20_000), det_bytes("kept-shared", 10_000)]
                pushed = _push_image(client, f"kept/img{i}", "v1", layers)
                assert pushed is not None
                kept[f"kept/img{i}"] = Expected(*pushed)
            for i in range(3000):
                data = b"orphan %d" % i
                r = client.post("/v2/junk/blobs/uploads/", params={"digest": digest_of(data)}, content=data)
                assert r.status_code == 201
        old = time.time() - 3600
        for directory, dirs, files in os.walk(registry.root / "docker/registry/v2"):
            for name in [*files, *dirs]:  # directories too: a killed delete leaves one behind
                os.utime(os.path.join(directory, name), (old, old))
        orphans_before, _ = _blob_bytes_on_disk(registry.root)

        def run_gc() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed under it, on purpose
                httpx.post(f"{registry.url}/admin/v1/gc", json={}, timeout=120)

        sweep = threading.Thread(target=run_gc, daemon=True)
        sweep.start()
        deadline = time.monotonic() + 60
        while _blob_bytes_on_disk(registry.root)[0] > orphans_before - 200 and time.monotonic() < deadline:
            time.sleep(0.005)
        registry.stop(signal.SIGKILL)
        mid, _ = _blob_bytes_on_disk(registry.root)
        assert 0 < orphans_before - mid < 3000, "the kill did not land mid-sweep"
        registry.start()
        with httpx.Client(base_url=registry.url, timeout=60) as client:
            for repo, exp in kept.items():
                assert _verify_pull(client, repo, "v1", exp) is None
            report = client.post("/admin/v1/gc", json={}, timeout=120).json()
            assert report["blobs_marked"] == len(
                {d for e in kept.values() for d in e.blobs} | {digest_of(e.manifest) for e in kept.values()}
            )
            for repo, exp in kept.items():
                assert _verify_pull(client, repo, "v1", exp) is None
        remaining, _ = _blob_bytes_on_disk(registry.root)
        # Includes any ``<hex>.tmp-*`` directory the killed delete left: the collection removes those too.
        assert remaining == report["blobs_marked"]
    finally:
        registry.stop()
