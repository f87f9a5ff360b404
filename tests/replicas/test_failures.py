"""Replicas when a part of the deployment fails: the object store, the database, a replica.

One deployment for the module (``cluster`` in tests/conftest.py): three replicas, SeaweedFS,
PostgreSQL, HAProxy. The outages are real: SeaweedFS and PostgreSQL are stopped (their data kept)
and started again on the same ports; the replicas are never restarted for them. Each outage
lasts as long as its checks take (a few seconds, not the issue's 30 s): what a replica does with
a store that refuses connections does not change with the length of the refusal, only the number
of requests refused does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.regclient import det_bytes, digest_of, push_blob
from tests.servers.cluster import REPLICA_HEADER, Cluster


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


def test_object_store_stopped(cluster: Cluster, direct: list[httpx.Client], lb: httpx.Client) -> None:
    existing = push_blob(lb, "replicas/store", det_bytes("before the outage", 50_000))
    cluster.seaweed.halt()
    try:
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
    finally:
        cluster.seaweed.resume()
    assert all(r.proc is not None and r.proc.poll() is None for r in cluster.replicas)
    _push_each(direct, "replicas/store", "after the store came back")


def test_database_stopped(cluster: Cluster, direct: list[httpx.Client], lb: httpx.Client) -> None:
    before = push_blob(lb, "replicas/db", det_bytes("before the database outage", 50_000))
    assert cluster.postgres is not None
    cluster.postgres.halt()
    try:
        with ThreadPoolExecutor(len(direct)) as pool:  # each waits for the pool's timeout
            answers = list(pool.map(lambda c: c.post("/v2/replicas/db/blobs/uploads/"), direct))
        for answer in answers:
            _unavailable(answer, "the database (PostgreSQL")
    finally:
        cluster.postgres.resume()
    assert all(r.proc is not None and r.proc.poll() is None for r in cluster.replicas)
    _push_each(direct, "replicas/db", "after the database came back")
    assert lb.head(f"/v2/replicas/db/blobs/{before}").status_code == 200
