"""Replicas when a part of the deployment fails: the object store, the database, a replica.

One deployment for the module (``cluster`` in tests/conftest.py): three replicas, SeaweedFS,
PostgreSQL, HAProxy. The outages are real: SeaweedFS and PostgreSQL are stopped (their data kept)
and started again on the same ports; the replicas are never restarted for them. Each outage lasts
``OUTAGE`` seconds (the issue's 30), with requests to every replica along the way, longer than a
replica's heartbeat period: its background work (heartbeats, maintenance scheduling) meets the
outage several times and must carry on after it.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dockyard.storage.gc import TIMESTAMP_SLACK
from dockyard.storage.replicas import BEAT_SECONDS
from tests.regclient import OCI_MANIFEST, _config, det_bytes, digest_of, image_manifest, push_blob, targz
from tests.servers.cluster import REPLICA_HEADER, Cluster

# Collections judge by liveness records alone (grace 0), so the final one must leave exactly
# what kept images reference.
CLUSTER_CONFIG = {"storage": {"maintenance": {"gc": {"grace": "0s"}}}}
OUTAGE = 30.0  # seconds the object store, then the database, stay down (issue #11)


@pytest.fixture
def direct(cluster: Cluster) -> Iterator[list[httpx.Client]]:
    """One client per replica, bypassing the load balancer."""
    clients = [httpx.Client(base_url=r.url, timeout=60) for r in cluster.replicas]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def lb(cluster: Cluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=60) as client:
        yield client


def _path(location: str) -> str:
    """An upload URL without its scheme and host, to send it to another replica."""
    return httpx.URL(location).raw_path.decode()


def test_chunked_upload_patches_on_every_replica(direct: list[httpx.Client], lb: httpx.Client) -> None:
    """POST on one replica, each PATCH on the next, PUT on the first: chunks below and above the
    store's 5 MiB minimum part size, so both the parts and the small chunks kept between requests
    travel between replicas."""
    chunks = [det_bytes("chunk-a", 6 << 20), det_bytes("chunk-b", 300_000), det_bytes("chunk-c", 5 << 20)]
    data = b"".join(chunks)
    digest = digest_of(data)
    started = direct[0].post("/v2/replicas/chunked/blobs/uploads/")
    assert started.status_code == 202, started.text
    location, offset = _path(started.headers["location"]), 0
    for i, chunk in enumerate(chunks):
        client = direct[(i + 1) % len(direct)]
        status = client.get(location)  # each replica sees the upload as the last one left it
        assert (status.status_code, status.headers["range"]) == (204, f"0-{max(offset - 1, 0)}")
        answer = client.patch(
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )
        assert answer.status_code == 202, answer.text
        offset += len(chunk)
        assert answer.headers["range"] == f"0-{offset - 1}"
        location = _path(answer.headers["location"])
    done = direct[0].put(f"{location}{'&' if '?' in location else '?'}digest={digest}")
    assert done.status_code == 201, done.text
    for client in (*direct, lb):
        blob = client.get(f"/v2/replicas/chunked/blobs/{digest}", follow_redirects=True)
        assert blob.status_code == 200
        assert hashlib.sha256(blob.content).hexdigest() == digest.removeprefix("sha256:")


def _unavailable(answer: httpx.Response, names: str) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text)
    [error] = answer.json()["errors"]
    assert error["code"] == "UNAVAILABLE"
    assert names in error["message"], error["message"]
    assert answer.headers["retry-after"]


def _push_each(direct: list[httpx.Client], repo: str, seed: str) -> None:
    """A blob pushed through every replica, monolithic and chunked."""
    for i, client in enumerate(direct):
        for mode in ("monolithic", "chunked"):
            push_blob(client, repo, det_bytes(f"{seed}-{i}-{mode}", 70_000), mode=mode)


def _through_outage(since: float, check: Callable[[], None]) -> int:
    """``check`` now and every few seconds until the outage begun at ``since`` (monotonic) has
    lasted ``OUTAGE`` seconds; how many times it ran."""
    checks = 0
    while True:
        check()
        checks += 1
        left = OUTAGE - (time.monotonic() - since)
        if left <= 0:
            return checks
        time.sleep(min(3.0, left))


def _beats_resume(dsn: str, replicas: int) -> None:
    """Every replica records a heartbeat in the database after the outage, within two beat
    periods: the task that beats met the outage and is still running."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        query = "SELECT count(*) FROM replicas WHERE beat_at > %s"  # beat_at: the database's epoch
        row = conn.execute("SELECT extract(epoch from clock_timestamp())::float8").fetchone()
        assert row is not None
        back = row[0]
        deadline = time.monotonic() + 2 * BEAT_SECONDS + 5
        while (beating := conn.execute(query, (back,)).fetchone()) is not None and beating[0] < replicas:
            assert time.monotonic() < deadline, f"{beating[0]} of {replicas} replicas beat after the outage"
            time.sleep(0.5)


def test_object_store_stopped(cluster: Cluster, direct: list[httpx.Client], lb: httpx.Client) -> None:
    existing = push_blob(lb, "replicas/store", det_bytes("before the outage", 50_000))
    cluster.seaweed.halt()
    halted = time.monotonic()

    def refused() -> None:
        # Every replica: a write answers 503 naming the store; so does reading stored content.
        for client in direct:
            started = client.post("/v2/replicas/store/blobs/uploads/")
            if started.status_code == 202:  # the session lives in the database: the write fails later
                location = _path(started.headers["location"])
                data = det_bytes("during the outage", 40_000)
                answer = client.put(f"{location}?digest={digest_of(data)}", content=data)
            else:
                answer = started
            _unavailable(answer, "the object store (S3 bucket")
            assert client.head(f"/v2/replicas/store/blobs/{existing}").status_code == 503
            health = client.get("/health")
            assert (health.status_code, health.json()["storage"]) == (503, "unreachable")
        # The load balancer keeps every replica (its probe is GET /v2/): clients get the 503.
        seen = {lb.get("/v2/").headers[REPLICA_HEADER] for _ in range(6)}
        assert seen == {"r1", "r2", "r3"}
        _unavailable(lb.get(f"/v2/replicas/store/blobs/{existing}"), "did not answer")

    try:
        assert _through_outage(halted, refused) >= 2
        assert all(r.proc is not None and r.proc.poll() is None for r in cluster.replicas)
    finally:
        cluster.seaweed.resume()
    assert all(r.proc is not None and r.proc.poll() is None for r in cluster.replicas)
    _push_each(direct, "replicas/store", "after the store came back")
    for client in direct:
        assert client.get("/health").status_code == 200
    _beats_resume(cluster.dsn, len(cluster.replicas))


def _monolithic_push(client: httpx.Client) -> httpx.Response:
    """POST then PUT of one blob: the first answer that is not a success (a session may start
    without the database: its record is written lazily)."""
    started = client.post("/v2/replicas/db/blobs/uploads/")
    if started.status_code != 202:
        return started
    data = det_bytes("during the database outage", 30_000)
    return client.put(f"{_path(started.headers['location'])}?digest={digest_of(data)}", content=data)


def _until_served(client: httpx.Client, seconds: float = 60.0) -> None:
    """Retry a push as clients do on 503 until the replica serves it: the connection pool
    reconnects with a backoff, so the first request after the database is back may still wait
    out the pool's timeout (seen once in a clean-clone run). A replica that never recovers fails."""
    deadline = time.monotonic() + seconds
    while (answer := _monolithic_push(client)).status_code == 503:
        assert time.monotonic() < deadline, f"still unavailable after {seconds} s: {answer.text}"
        time.sleep(0.5)
    assert answer.status_code == 201, answer.text


def test_database_stopped(cluster: Cluster, direct: list[httpx.Client], lb: httpx.Client) -> None:
    before = push_blob(lb, "replicas/db", det_bytes("before the database outage", 50_000))
    assert cluster.postgres is not None
    cluster.postgres.halt()
    halted = time.monotonic()

    def refused() -> None:
        with ThreadPoolExecutor(len(direct)) as pool:  # each waits for the pool's timeout
            answers = list(pool.map(_monolithic_push, direct))
        for answer in answers:
            _unavailable(answer, "the database (PostgreSQL")

    try:
        assert _through_outage(halted, refused) >= 2
        assert all(r.proc is not None and r.proc.poll() is None for r in cluster.replicas)
    finally:
        cluster.postgres.resume()
    assert all(r.proc is not None and r.proc.poll() is None for r in cluster.replicas)
    for client in direct:
        _until_served(client)
    _push_each(direct, "replicas/db", "after the database came back")
    assert lb.head(f"/v2/replicas/db/blobs/{before}").status_code == 200
    for client in direct:
        assert client.get("/health").status_code == 200
    _beats_resume(cluster.dsn, len(cluster.replicas))


# -- garbage collection while 16 clients push and delete -------------------------------------------

PUSHERS, IMAGES = 16, 2


@dataclass
class Pushed:
    repo: str
    tag: str
    manifest: bytes
    blobs: list[bytes]

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def _image(pusher: int, k: int, base: bytes) -> Pushed:
    own = targz({"own.bin": det_bytes(f"gc-{pusher}-{k}", 20_000)})
    config = _config("amd64", [base, own])
    manifest = image_manifest(OCI_MANIFEST, config, [base, own])
    return Pushed(f"gc/p{pusher}", f"v{k}", manifest, [config, base, own])


def _push_image(client: httpx.Client, image: Pushed) -> int:
    """Push like a client: blobs it lacks, then the manifest; a manifest refused because a blob
    it checked went meanwhile (a collection with grace 0 may take a blob before its manifest
    arrives) is pushed again, blobs first. Returns how many times that happened."""
    for attempt in range(4):
        for blob in image.blobs:
            if client.head(f"/v2/{image.repo}/blobs/{digest_of(blob)}").status_code != 200:
                push_blob(client, image.repo, blob)
        answer = client.put(
            f"/v2/{image.repo}/manifests/{image.tag}",
            content=image.manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        if answer.status_code == 201:
            return attempt
        assert answer.status_code == 400, answer.text
        assert {e["code"] for e in answer.json()["errors"]} == {"MANIFEST_BLOB_UNKNOWN"}, answer.text
    raise AssertionError(f"{image.repo}:{image.tag} refused 4 times")


def _pusher(url: str, pusher: int, base: bytes) -> tuple[list[Pushed], list[Pushed], int]:
    """Push IMAGES images; after each, delete the previous one on every other turn (half the
    pushers delete one image while the collections run)."""
    kept: list[Pushed] = []
    deleted: list[Pushed] = []
    retried = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        for k in range(IMAGES):
            image = _image(pusher, k, base)
            retried += _push_image(client, image)
            kept.append(image)
            if k and (pusher + k) % 2 == 0:
                gone = kept.pop(-2)
                answer = client.delete(f"/v2/{gone.repo}/manifests/{gone.digest}")
                assert answer.status_code == 202, answer.text
                deleted.append(gone)
    return kept, deleted, retried


def _collect(client: httpx.Client) -> dict[str, Any] | None:
    """One online collection; None if another replica's was running (409 GC_RUNNING)."""
    answer = client.post("/admin/v1/gc", json={})
    if answer.status_code == 409:
        assert answer.json()["errors"][0]["code"] == "GC_RUNNING"
        return None
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


def test_pushes_and_deletes_while_gc_runs(cluster: Cluster, direct: list[httpx.Client]) -> None:
    base = targz({"base.bin": det_bytes("gc-base", 60_000)})
    reports: list[dict[str, Any]] = []
    refused = 0
    done = threading.Event()

    def collector(client: httpx.Client) -> None:
        """Collections back to back on one replica (with a pause: the pushes need the CPU too)."""
        nonlocal refused
        while not done.wait(0.5):
            report = _collect(client)
            if report is None:
                refused += 1
            else:
                reports.append(report)

    with ThreadPoolExecutor(PUSHERS + 2) as pool:
        collectors = [pool.submit(collector, direct[0]), pool.submit(collector, direct[1])]
        pushers = [pool.submit(_pusher, cluster.url, i, base) for i in range(PUSHERS)]
        results = [p.result() for p in pushers]
        done.set()
        for c in collectors:
            c.result()
    kept = [image for k, _, _ in results for image in k]
    deleted = [image for _, d, _ in results for image in d]
    # Collections ran over stored content while the pushes went on.
    assert any(r["blobs_total"] for r in reports), reports
    # One runner at a time across replicas: the collections' spans never overlap.
    spans = sorted((r["started"], r["finished"]) for r in reports)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans

    # Every deleted image is gone; every kept one pulls intact (checked after the last collection).
    with httpx.Client(base_url=cluster.url, timeout=60) as lb:
        for image in deleted:
            assert lb.get(f"/v2/{image.repo}/manifests/{image.digest}").status_code == 404

        # A last collection, once the database's clock is past the slack after the last write:
        # everything stored is then referenced by a kept image, nothing else remains.
        assert cluster.postgres is not None
        _wait_database_clock(cluster.dsn, seconds=TIMESTAMP_SLACK + 0.5)
        final = _collect(direct[2])
        assert final is not None
        _assert_intact(lb, kept)
    referenced = {digest_of(b) for image in kept for b in [image.manifest, *image.blobs]}
    assert set(cluster.stored_blobs()) == referenced


def _assert_intact(lb: httpx.Client, kept: list[Pushed]) -> None:
    for image in kept:
        answer = lb.get(f"/v2/{image.repo}/manifests/{image.tag}", headers={"Accept": OCI_MANIFEST})
        assert answer.status_code == 200, answer.text
        assert answer.content == image.manifest
        for blob in image.blobs:
            got = lb.get(f"/v2/{image.repo}/blobs/{digest_of(blob)}", follow_redirects=True)
            assert got.content == blob


def _wait_database_clock(dsn: str, seconds: float) -> None:
    """Until the coordinator's clock (the database's now()) has moved ``seconds`` on."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        query = b"SELECT extract(epoch from now())::float8"
        first = conn.execute(query).fetchone()
        assert first is not None
        while (row := conn.execute(query).fetchone()) is not None and row[0] < first[0] + seconds:
            time.sleep(0.1)
