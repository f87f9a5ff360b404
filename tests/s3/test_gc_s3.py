"""Garbage collection on S3 of content no coordinator ever recorded: blobs written into the bucket
by distribution (or before the database existed) are judged by their ``Last-Modified`` against the
grace period, and a liveness record, when there is one, wins over the storage's timestamp.

The blobs are put into the bucket directly, at distribution's paths, as distribution's S3 driver
writes them. The coordinator's clock is injected (two hours ahead instead of waiting an hour),
and ``Last-Modified`` is the store's own."""

from __future__ import annotations

import time

import pytest

from dockyard.coord.memory import MemoryCoordinator
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.drivers import create_driver
from dockyard.storage.gc import GCOptions, collect
from dockyard.storage.liveness import blob_key
from dockyard.storage.registry import Registry
from tests.servers.s3 import S3Engine

pytestmark = pytest.mark.anyio
HOUR = 3600.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _put_as_distribution(engine: S3Engine, root: str, data: bytes) -> Digest:
    digest = Digest.of(data)
    key = f"{root.strip('/')}/{paths.blob_data(digest).lstrip('/')}"
    engine.client().put_object(Bucket=engine.shared, Key=key, Body=data)
    return digest


async def test_unrecorded_blobs_are_judged_by_last_modified(seaweedfs: S3Engine) -> None:
    root = seaweedfs.root("gc-lastmodified")
    driver = create_driver("s3", seaweedfs.driver_params(seaweedfs.shared, rootdirectory=root))
    orphan = _put_as_distribution(seaweedfs, root, b"written by distribution, referenced by nothing")
    recorded = _put_as_distribution(seaweedfs, root, b"also unreferenced, but recorded just now")
    options = GCOptions(grace_seconds=HOUR)

    # Now, by the store's clock: both were modified within the grace period, both stay.
    registry = Registry(driver, coordinator=MemoryCoordinator())
    report = await collect(registry, options)
    assert (report.blobs_deleted, report.kept_recent) == ([], 2)

    # Two hours on: the orphan's Last-Modified is older than the grace period, so it goes; the
    # other has a liveness record from "now" (a replica committed it), which the store's older
    # timestamp does not override.
    later = MemoryCoordinator(clock=lambda: time.time() + 2 * HOUR)
    await later.referenced([blob_key(recorded)])
    report = await collect(Registry(driver, coordinator=later), options)
    assert [b["digest"] for b in report.blobs_deleted] == [str(orphan)]
    assert report.kept_recent == 1
    assert await driver.stat_many([paths.blob_data(orphan), paths.blob_data(recorded)]) == [
        None,
        await driver.stat(paths.blob_data(recorded)),
    ]
    await driver.delete_many([paths.ROOT])
