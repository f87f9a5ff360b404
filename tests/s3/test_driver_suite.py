"""The shared driver suite on the S3 driver, against SeaweedFS and against Ceph RGW 16.

Each test gets its own ``rootdirectory`` in the engine's shared bucket (and one botocore client
per engine: building one loads the S3 model, ~0.3 s), so the suite's leftover check sees only
what that test wrote; an unfinished multipart upload under it counts as a leftover too.
"""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.drivers.s3 import S3Driver
from dockyard.storage.drivers.s3_client import make_client, settings_from_params
from dockyard.testing.driver_suite import DriverSuite
from tests.servers.s3 import S3Engine


class S3Suite(DriverSuite):
    async def leftovers(self, store: CheckedDriver) -> list[str]:
        assert isinstance(store.inner, S3Driver)
        s3 = store.inner
        uploads = await s3.call("list_multipart_uploads", Prefix=s3.settings.prefix("/"))
        unfinished = [f"unfinished upload {u['Key']}" for u in uploads.get("Uploads", ())]
        return [*await super().leftovers(store), *unfinished]


def _driver(engine: S3Engine, client: Any, *, small: bool = True) -> S3Driver:
    params = engine.driver_params(engine.shared, rootdirectory=engine.root("suite"))
    return S3Driver(settings_from_params(params), client, small=small)


@pytest.fixture(scope="module")
def seaweedfs_client(seaweedfs: S3Engine) -> Any:
    return make_client(seaweedfs.driver_params(seaweedfs.shared), 64)


@pytest.fixture(scope="module")
def ceph_client(ceph_rgw: S3Engine) -> Any:
    return make_client(ceph_rgw.driver_params(ceph_rgw.shared), 64)


class TestS3OnSeaweedFS(S3Suite):
    @pytest.fixture
    def driver(self, seaweedfs: S3Engine, seaweedfs_client: Any) -> S3Driver:
        return _driver(seaweedfs, seaweedfs_client)


class TestS3OnCephRGW(S3Suite):
    @pytest.fixture
    def driver(self, ceph_rgw: S3Engine, ceph_client: Any) -> S3Driver:
        return _driver(ceph_rgw, ceph_client)


class TestS3OnSeaweedFSClientOnly(S3Suite):
    """Every call through botocore's client, as on a store without credentials: the path the
    driver falls back to (``s3_small``) passes the suite too."""

    @pytest.fixture
    def driver(self, seaweedfs: S3Engine, seaweedfs_client: Any) -> S3Driver:
        return _driver(seaweedfs, seaweedfs_client, small=False)
