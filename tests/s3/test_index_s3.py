"""The listing index on SeaweedFS: two instances writing through it list what the bucket holds, and
a tag another tool wrote into the bucket appears after a reconcile."""

from __future__ import annotations

import pytest

from dockyard.testing.postgres import PostgresServer
from tests.api.helpers import push_image
from tests.index.helpers import instance, listed, tag_behind_the_back, truth
from tests.index.test_index import two_instances_stay_in_step
from tests.servers.s3 import S3Engine

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_index_on_seaweedfs(seaweedfs: S3Engine, postgres: PostgresServer) -> None:
    storage = {
        "s3": seaweedfs.driver_params(seaweedfs.shared, rootdirectory=seaweedfs.root("index")),
        "redirect": {"disable": True},
    }
    dsn = postgres.create_database()
    await two_instances_stay_in_step(storage, dsn)
    a = instance(storage, dsn)
    try:
        digest, _ = await push_image(a.client, "app", "v1", seed="s3")
        await tag_behind_the_back(a.services, "app", "v2", digest)
        assert (await a.client.get("/v2/app/tags/list")).json()["tags"] == ["v1"]
        index = a.services.registry.index
        assert index is not None
        assert (await index.reconcile()).tags_added == 1
        assert await listed(a.client) == await truth(a.services)
    finally:
        await a.close()
