"""Chunked uploads across replicas on a real object store (SeaweedFS) coordinated by a real
PostgreSQL: each request of one upload lands on another replica, the digest comes from the
running hash saved with the session (never from reading the data back), a replica killed right
after acknowledging a PATCH loses nothing, and the upload purge aborts abandoned multipart uploads.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.app import build_app, create_services
from dockyard.config import parse_config
from dockyard.maintenance import jobs_from_config
from dockyard.services import Services
from dockyard.storage import paths
from dockyard.testing.postgres import PostgresServer
from tests.servers.dockyard import LiveRegistry
from tests.servers.s3 import S3Engine

pytestmark = pytest.mark.anyio
MiB = 1 << 20
FALLBACK = "computed from the stored data"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _storage(engine: S3Engine, root: str, **extra: Any) -> dict[str, Any]:
    return {
        "s3": engine.driver_params(engine.shared, rootdirectory=root, chunksize=5 * MiB),
        "redirect": {"disable": True},
        **extra,
    }


@pytest.fixture
async def replicas(seaweedfs: S3Engine, postgres: PostgresServer) -> AsyncIterator[list[Services]]:
    """Three app instances on one store and one database, as three replicas have them."""
    config = parse_config(
        {
            "storage": _storage(seaweedfs, seaweedfs.root("replicas")),
            "database": {"dsn": postgres.create_database()},
        }
    )
    made = [create_services(config) for _ in range(3)]
    try:
        yield made
    finally:
        for services in made:
            await services.coordinator.close()


def _client(services: Services) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(services)), base_url="http://r.test")


def _range(offset: int, chunk: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
    }


async def test_patches_alternate_between_replicas_and_a_third_finishes(replicas: list[Services]) -> None:
    # Small chunks (kept whole in the object at the session's path), one over the store's
    # minimum part size (a multipart upload, later continued by a server-side part copy).
    chunks = [b"a" * 1000, os.urandom(6 * MiB), b"c" * 3000, b"d" * 10]
    last = b"the last bytes, in the PUT"
    data = b"".join(chunks) + last
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    one, two, three = (_client(s) for s in replicas)
    async with one, two, three:
        r = await one.post("/v2/app/blobs/uploads/")
        assert r.status_code == 202, r.text
        location, offset = r.headers["Location"], 0
        for i, chunk in enumerate(chunks):
            r = await (one, two)[i % 2].patch(location, content=chunk, headers=_range(offset, chunk))
            assert r.status_code == 202, r.text
            location, offset = r.headers["Location"], offset + len(chunk)
        r = await three.put(location, params={"digest": digest}, content=last)
        assert r.status_code == 201, r.text
        r = await one.get(f"/v2/app/blobs/{digest}")
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest[7:]
    assert [s.registry.uploads.rehashed for s in replicas] == [0, 0, 0]


async def test_a_state_that_does_not_restore_reads_the_stored_parts_back(replicas: list[Services]) -> None:
    one, two = (_client(s) for s in replicas[:2])
    first, rest = os.urandom(6 * MiB), b"tail"
    digest = "sha256:" + hashlib.sha256(first + rest).hexdigest()
    async with one, two:
        r = await one.post("/v2/app/blobs/uploads/")
        location = r.headers["Location"]
        r = await one.patch(location, content=first, headers=_range(0, first))
        assert r.status_code == 202, r.text
        upload = r.headers["Docker-Upload-UUID"]
        coordinator = replicas[0].coordinator
        record = await coordinator.get_session(upload)
        assert record is not None and record.hash_state is not None
        damaged = bytes(b ^ 0x5A for b in record.hash_state)  # a corrupt record
        await coordinator.update_session(upload, offset=record.offset, hash_state=damaged)
        r = await two.put(r.headers["Location"], params={"digest": digest}, content=rest)
        assert r.status_code == 201, r.text
    assert replicas[1].registry.uploads.rehashed == 1


async def test_the_upload_purge_aborts_abandoned_multipart_uploads(seaweedfs: S3Engine) -> None:
    root = seaweedfs.root("purge")
    config = parse_config(
        {"storage": _storage(seaweedfs, root, maintenance={"uploadpurging": {"age": "0s"}})}
    )
    services = create_services(config)
    writer = await services.driver.writer(paths.upload_data("app", "abandoned"))
    await writer.write(os.urandom(6 * MiB))  # one part sent: a multipart upload is open
    client = seaweedfs.client()
    prefix = root.lstrip("/") + "/"

    def open_uploads() -> list[str]:
        answer = client.list_multipart_uploads(Bucket=seaweedfs.shared, Prefix=prefix)
        return [u["Key"] for u in answer.get("Uploads", ())]

    assert len(open_uploads()) == 1  # what a replica killed mid-PATCH leaves behind
    (purge,) = [
        job
        for job in jobs_from_config(config, services.registry, services.coordinator)
        if job.name == "upload-purge"
    ]
    await purge.run()
    assert open_uploads() == []
    await services.coordinator.close()


def _path(location: str) -> str:
    """The path and query of a Location (an absolute URL naming the replica that answered)."""
    url = httpx.URL(location)
    return url.raw_path.decode()


def _live(workdir: Path, engine: S3Engine, root: str, dsn: str, workers: int) -> LiveRegistry:
    registry = LiveRegistry(workdir, workers=workers)
    registry.config["storage"] = _storage(engine, root)
    registry.config["database"] = {"dsn": dsn}
    return registry


def test_a_replica_killed_after_acknowledging_a_patch_loses_nothing(
    tmp_path: Path, seaweedfs: S3Engine, postgres: PostgresServer
) -> None:
    """Two ``dockyard serve`` on one store and database: PATCHes alternate between them (``b`` has
    two workers, and each request comes on a new connection, so to either), ``a`` is killed
    (SIGKILL, its whole process group) right after its PATCH is acknowledged, and ``b`` finishes.
    (A PUT on a third instance: ``test_patches_alternate_between_replicas_and_a_third_finishes``.)"""
    root, dsn = seaweedfs.root("killed"), postgres.create_database()
    servers = [_live(tmp_path / name, seaweedfs, root, dsn, n) for name, n in (("a", 1), ("b", 2))]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda s: s.start(), servers))
    a, b = servers
    try:
        chunks = [b"a" * 1000, os.urandom(6 * MiB), b"c" * 3000, b"d" * 5000]
        last = b"finished by another"
        data = b"".join(chunks) + last
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        location = _path(httpx.post(f"{a.url}/v2/app/blobs/uploads/").headers["Location"])
        offset = 0
        for chunk, server in zip(chunks, (a, b, a, b), strict=True):
            r = httpx.patch(
                f"{server.url}{location}", content=chunk, headers=_range(offset, chunk), timeout=60
            )
            assert r.status_code == 202, r.text
            location, offset = _path(r.headers["Location"]), offset + len(chunk)
            if server is a and offset > MiB:
                assert a.stop(signal.SIGKILL) == -signal.SIGKILL  # acknowledged, then killed
        r = httpx.put(f"{b.url}{location}", params={"digest": digest}, content=last, timeout=60)
        assert r.status_code == 201, r.text
        r = httpx.get(f"{b.url}/v2/app/blobs/{digest}", timeout=60)
        assert r.status_code == 200 and r.content == data
        assert FALLBACK not in b.log()
    finally:
        for server in servers:
            server.stop()
