"""Many clients pushing the same blob, the same manifest and the same tag at the same moment."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx

from dockyard.storage.tags import QUIET_SECONDS
from tests.regclient import (
    OCI_MANIFEST,
    blob_path,
    det_bytes,
    digest_of,
    get_manifest,
    image_manifest,
    push_blob,
    push_manifest,
    stray_temp_files,
    tree_files,
    with_digest,
)
from tests.servers.dockyard import LiveRegistry

CLIENTS = 16
REPO = "race/repo"
T = TypeVar("T")


def all_at_once(work: Callable[[httpx.Client, int], T], url: str) -> list[T]:
    """Run ``work(client, i)`` in CLIENTS threads, each with its own connection, released together."""
    barrier = threading.Barrier(CLIENTS)

    def run(i: int) -> T:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.get("/v2/")  # connect before the barrier so the requests really overlap
            barrier.wait(30)
            return work(client, i)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(run, range(CLIENTS)))


def test_concurrent_pushes_leave_a_consistent_store(live_registry: LiveRegistry) -> None:
    url = live_registry.url
    layer = det_bytes("race-layer", 2 * 1024 * 1024 + 3)
    layer_digest = digest_of(layer)

    # 1. The same blob, 16 times at once, half monolithic and half chunked.
    def push_layer(client: httpx.Client, i: int) -> str:
        return push_blob(client, REPO, layer, mode="chunked" if i % 2 else "monolithic")

    assert all_at_once(push_layer, url) == [layer_digest] * CLIENTS

    configs = [f'{{"architecture":"amd64","os":"linux","variant":"v{i}"}}'.encode() for i in range(CLIENTS)]
    with httpx.Client(base_url=url) as client:
        r = client.get(f"/v2/{REPO}/blobs/{layer_digest}")
        assert r.status_code == 200 and digest_of(r.content) == layer_digest
        for config in configs:
            push_blob(client, REPO, config)
    manifests = [image_manifest(OCI_MANIFEST, config, [layer]) for config in configs]
    digests = [digest_of(m) for m in manifests]

    # 2. The same manifest under the same tag, 16 times at once.
    def put_same(client: httpx.Client, i: int) -> tuple[int, str | None]:
        r = client.put(
            f"/v2/{REPO}/manifests/same", content=manifests[0], headers={"Content-Type": OCI_MANIFEST}
        )
        return r.status_code, r.headers.get("docker-content-digest")

    assert all_at_once(put_same, url) == [(201, digests[0])] * CLIENTS

    # 3. Sixteen different manifests to one tag at once: the tag ends on one of them, fully readable.
    def put_different(client: httpx.Client, i: int) -> tuple[int, str | None]:
        r = client.put(
            f"/v2/{REPO}/manifests/contested", content=manifests[i], headers={"Content-Type": OCI_MANIFEST}
        )
        return r.status_code, r.headers.get("docker-content-digest")

    assert sorted(all_at_once(put_different, url)) == sorted((201, d) for d in digests)

    # 4. Sixteen distinct blobs pushed in parallel to one repository (directories created concurrently).
    def push_distinct(client: httpx.Client, i: int) -> str:
        return push_blob(client, f"{REPO}/fanout", det_bytes(f"fanout-{i}", 300_000 + i), mode="chunked")

    fanout = all_at_once(push_distinct, url)

    with httpx.Client(base_url=url) as client:
        r = get_manifest(client, REPO, "same")
        assert (r.status_code, r.content) == (200, manifests[0])
        r = get_manifest(client, REPO, "contested")
        assert r.status_code == 200
        winner = r.headers["docker-content-digest"]
        assert winner in digests and digest_of(r.content) == winner
        assert r.content == manifests[digests.index(winner)]
        for digest, body in zip(digests, manifests, strict=True):
            r = get_manifest(client, REPO, digest)
            assert (r.status_code, r.content) == (200, body)
        assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["contested", "same"]
        for i, digest in enumerate(fanout):
            r = client.get(f"/v2/{REPO}/fanout/blobs/{digest}")
            assert r.status_code == 200 and r.content == det_bytes(f"fanout-{i}", 300_000 + i)
        # An upload still works afterwards (no session or lock left behind).
        location = client.post(f"/v2/{REPO}/blobs/uploads/").headers["location"]
        assert client.put(with_digest(location, layer_digest), content=layer).status_code == 201

    root = live_registry.root
    assert (blob_path(root, layer_digest) / "data").read_bytes() == layer
    files = tree_files(root, skip_uploads=False)
    contested = f"repositories/{REPO}/_manifests/tags/contested"
    assert files[f"{contested}/current/link"] == winner.encode()
    index = {p for p in files if p.startswith(f"{contested}/index/")}
    assert index == {f"{contested}/index/sha256/{d.removeprefix('sha256:')}/link" for d in digests}
    assert [p for p in files if "/_uploads/" in p] == [], "finished upload sessions were left behind"
    assert stray_temp_files(root) == []
    assert "Traceback" not in live_registry.log()


def _fresh_views(url: str, repo: str, connections: int = 8) -> tuple[list[list[str]], list[list[str]]]:
    """Tag lists and catalogs seen over new connections (so both worker processes answer)."""
    tags, catalogs = [], []
    for _ in range(connections):
        with httpx.Client(base_url=url) as client:
            tags.append(client.get(f"/v2/{repo}/tags/list").json()["tags"])
            catalogs.append(client.get("/v2/_catalog").json()["repositories"])
    return tags, catalogs


def _settle(live: LiveRegistry, repo: str) -> None:
    """Backdate the repository's tags directory past QUIET_SECONDS so workers cache its listing.

    A worker caches a tag list only once the directory has been unchanged that long (file times
    tick coarsely); moving the directory's time back does what waiting it out would, without
    sleeping on the wall clock.
    """
    tags = Path(live.root, "docker/registry/v2/repositories", repo, "_manifests/tags")
    then = time.time() - 10 * QUIET_SECONDS
    os.utime(tags, (then, then))


def test_every_worker_sees_changes_at_once(live_registry: LiveRegistry) -> None:
    """Tag lists and the catalog are cached per worker process: a change made through one worker
    must be visible through every worker on the very next request."""
    url = live_registry.url
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = det_bytes("fresh-layer", 10_000)
    manifest = image_manifest(OCI_MANIFEST, config, [layer])
    other = image_manifest(OCI_MANIFEST, config, [layer, layer])
    with httpx.Client(base_url=url) as client:
        for blob in (config, layer):
            push_blob(client, f"{REPO}/a", blob)
            push_blob(client, f"{REPO}/b", blob)
        push_manifest(client, f"{REPO}/a", "t0", manifest, OCI_MANIFEST)
    _settle(live_registry, f"{REPO}/a")  # the workers cache what they list now
    assert _fresh_views(url, f"{REPO}/a") == ([["t0"]] * 8, [[f"{REPO}/a"]] * 8)

    with httpx.Client(base_url=url) as client:
        push_manifest(client, f"{REPO}/a", "t1", other, OCI_MANIFEST)
        push_manifest(client, f"{REPO}/b", "only", manifest, OCI_MANIFEST)
    assert _fresh_views(url, f"{REPO}/a") == ([["t0", "t1"]] * 8, [[f"{REPO}/a", f"{REPO}/b"]] * 8)

    _settle(live_registry, f"{REPO}/a")
    _fresh_views(url, f"{REPO}/a")
    with httpx.Client(base_url=url) as client:
        assert client.delete(f"/v2/{REPO}/a/manifests/t0").status_code == 202
    tags, _ = _fresh_views(url, f"{REPO}/a")
    assert tags == [["t1"]] * 8
