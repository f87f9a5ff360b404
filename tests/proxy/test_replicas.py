"""Several replicas on one store with PostgreSQL as their coordinator (``database.dsn``): a blob
missing everywhere is fetched from the upstream once however many replicas are asked for it at
once (the fill's advisory lock), the others wait for its commit; and the cache's eviction run by
one replica is seen by all."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.app import create_services
from dockyard.config import parse_config
from dockyard.oci.digest import Digest
from dockyard.services import Services
from dockyard.storage.blobs import StoredBlob
from dockyard.testing.postgres import PostgresServer
from tests.proxy.conftest import Upstream
from tests.proxy.images import push

pytestmark = pytest.mark.anyio


async def drain(source: object) -> bytes:
    return b"".join([chunk async for chunk in source.read()])  # type: ignore[attr-defined]


async def test_replicas_share_one_upstream_fetch_per_blob_through_postgres(
    make_upstream: Callable[..., Upstream], postgres: PostgresServer, tmp_path: Path
) -> None:
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/big", "1", seed="replicas", sizes=(700_000, 500_000))
    dsn = postgres.create_database()

    def replica(n: int) -> Services:
        tree = {
            "storage": {"filesystem": {"rootdirectory": str(tmp_path / "store"), "fsync": False}},
            "database": {"dsn": dsn},
            "proxy": {
                "upstreams": [{"prefix": "docker.io", "remoteurl": "http://up.test"}],
                "spooldirectory": str(tmp_path / f"spool-{n}"),  # each replica on its own machine
                "cache": {"maxsize": 0},
            },
        }
        return create_services(parse_config(tree), upstream_transports=lambda _: up)

    replicas = [replica(n) for n in range(3)]
    try:
        assert all(r.coordinator.name == "postgres" for r in replicas)
        name = "docker.io/library/big"
        await replicas[0].model.pull_manifest(name, "1", head=False)
        up.gate = asyncio.Event()  # the upstream holds every blob body half way
        layers = [Digest.parse(d) for d in image.layers]
        reads = [asyncio.create_task(_read(r, name, layer)) for layer in layers for r in replicas]
        while up.count("GET", "/blobs/") < len(layers):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # every replica has asked; none may finish before the commit
        assert not any(t.done() for t in reads)
        up.gate.set()
        got = await asyncio.gather(*reads)
        for i, layer in enumerate(layers):
            assert got[i * 3 : i * 3 + 3] == [image.blobs[str(layer)]] * 3
            assert up.count("GET", f"/blobs/{layer}") == 1  # one fetch for three replicas
        for r in replicas[1:]:
            assert isinstance(await r.model.open_blob(name, layers[0]), StoredBlob)

        # One replica's eviction (maxsize 0) empties the cache for all of them.
        report = await replicas[2].proxy.cache.maintain()  # type: ignore[union-attr]
        assert [e.reason for e in report.evicted] == ["size"]
        assert await replicas[0].registry.tags.resolve(name, "1") is None
        listing = await replicas[1].proxy.cache.listing()  # type: ignore[union-attr]
        assert listing["images"] == []
    finally:
        for r in replicas:
            await r.proxy.close(0)  # type: ignore[union-attr]
            await r.coordinator.close()


async def _read(services: Services, name: str, digest: Digest) -> bytes:
    return await drain(await services.model.open_blob(name, digest))
