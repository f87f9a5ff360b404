"""The S3 driver's calls of single small objects (``s3_small``), on both engines: they answer what
botocore's client answers, errors included; they are the calls a push and a manifest GET make;
an answer only the client can follow sends that call, and every later one, through the client;
and the batches that know they look at files make no LIST for a missing one."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dockyard.errors import StorageUnavailable
from dockyard.storage.drivers.checked import CheckedDriver, checked
from dockyard.storage.drivers.s3 import S3Driver
from dockyard.storage.drivers.s3_client import make_client, settings_from_params
from dockyard.storage.drivers.s3_small import Fallback, SmallObjects, bucket_url
from tests.servers.s3 import S3Engine

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["seaweedfs", "ceph_rgw"])
def engine(request: pytest.FixtureRequest) -> S3Engine:
    engine: S3Engine = request.getfixturevalue(request.param)
    return engine


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    return {}


def _params(engine: S3Engine, **extra: Any) -> dict[str, Any]:
    return engine.driver_params(engine.shared, rootdirectory=engine.root("small"), **extra)


class Counted(S3Driver):
    """The driver with a count of its S3 operations (``ops``) and of those that went through
    botocore's client (``calls``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ops: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    async def call(self, operation: str, **kwargs: Any) -> Any:
        self.calls[operation] += 1
        if self._small is None:  # not by way of _quick
            self.ops[operation] += 1
        return await super().call(operation, **kwargs)

    async def _quick(self, fn: Any, operation: str, **kwargs: Any) -> Any:
        self.ops[operation] += 1
        return await super()._quick(fn, operation, **kwargs)


@pytest.fixture
async def counted(engine: S3Engine, clients: dict[str, Any]) -> AsyncIterator[tuple[Counted, CheckedDriver]]:
    params = _params(engine)
    client = clients.setdefault(engine.name, make_client(params, 64))
    driver = Counted(settings_from_params(params), client)
    yield driver, checked(driver)


async def test_answers_match_the_clients(engine: S3Engine, clients: dict[str, Any]) -> None:
    params = _params(engine)
    client = clients.setdefault(engine.name, make_client(params, 64))
    small = SmallObjects(client, engine.shared, {})
    key = settings_from_params(params).key("/a b/c~d+e")  # characters a key must have quoted
    small.put(key, b"content", {"dockyard-multipart": "u 5 1-2"})
    ours, theirs = small.head(key), client.head_object(Bucket=engine.shared, Key=key)
    for name in ("ContentLength", "ETag", "LastModified", "Metadata"):
        assert ours[name] == theirs[name], name
    assert small.get(key) == b"content"
    with pytest.raises(ClientError) as missing_head:
        small.head(key + "-absent")
    with pytest.raises(ClientError) as missing_get:
        small.get(key + "-absent")
    assert missing_head.value.response["Error"]["Code"] == "404"
    assert missing_get.value.response["Error"]["Code"] == "NoSuchKey"
    assert missing_get.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exists:
        small.put(key, b"other", if_absent=True)
    assert exists.value.response["Error"]["Code"] in ("PreconditionFailed", "412")
    assert small.get(key) == b"content"
    client.delete_object(Bucket=engine.shared, Key=key)


async def test_listing_pages_and_batch_deletes(engine: S3Engine, clients: dict[str, Any]) -> None:
    params = _params(engine)
    client = clients.setdefault(engine.name, make_client(params, 64))
    small = SmallObjects(client, engine.shared, {})
    prefix = settings_from_params(params).prefix("/p")
    names = ["a&b", "c<d>", "e f", "g'h"]  # characters XML and URLs both escape
    for name in names:
        small.put(prefix + name, b"x")
    first = small.list(prefix, limit=3)
    assert first["IsTruncated"] and first["KeyCount"] == 3
    rest = small.list(prefix, first["NextContinuationToken"])
    assert not rest["IsTruncated"]
    keys = [item["Key"] for item in [*first["Contents"], *rest["Contents"]]]
    assert keys == [prefix + name for name in sorted(names)]
    assert keys == [
        item["Key"] for item in client.list_objects_v2(Bucket=engine.shared, Prefix=prefix)["Contents"]
    ]
    assert small.delete(keys) == {}
    assert small.list(prefix) == {"Contents": [], "KeyCount": 0, "IsTruncated": False}


async def test_bucket_url_is_the_clients(engine: S3Engine, clients: dict[str, Any]) -> None:
    client = clients.setdefault(engine.name, make_client(_params(engine), 64))
    assert bucket_url(client, engine.shared) == f"{client.meta.endpoint_url}/{engine.shared}/"


async def test_a_push_and_a_manifest_get_stay_off_the_client(counted: tuple[Counted, CheckedDriver]) -> None:
    """HEAD of a missing blob (2 HEADs, no LIST), the session's files, the committed blob and its
    link, the removal of the session (one LIST and one batch delete for its data and directory):
    none of it through the client."""
    driver, store = counted
    link, data = "/repositories/r/_layers/sha256/ab/link", "/blobs/sha256/ab/cd/data"
    assert await store.stat_many([link, data], files=True) == [None, None]
    assert driver.ops == {"head_object": 2}
    await store.put_many(
        [("/repositories/r/_uploads/u/startedat", b"now"), ("/repositories/r/_uploads/u/data", b"")]
    )
    writer = await store.writer("/repositories/r/_uploads/u/data", create=False)
    await writer.write(b"layer bytes")
    await writer.commit(data, [(link, b"sha256:abcd")], ["/repositories/r/_uploads/u"])
    # writer: HEAD of the data; commit: HEAD of the destination, PUT of blob and link, then the
    # session's LIST (its directory, which holds the data file too), HEAD of its key, one delete
    assert driver.ops == {"head_object": 5, "put_object": 4, "list_objects_v2": 1, "delete_objects": 1}
    assert await store.get_content(link) == b"sha256:abcd"
    assert [i.size if i else None for i in await store.stat_many([link, data], files=True)] == [11, 11]
    assert driver.calls == {}
    assert not await store.exists("/repositories/r/_uploads/u/startedat")
    await store.delete("/repositories")
    await store.delete("/blobs")


async def test_nested_removals_answer_each_path(counted: tuple[Counted, CheckedDriver]) -> None:
    driver, store = counted
    await store.put_many([("/d/x/data", b"1"), ("/d/x/startedat", b"2"), ("/d/y", b"3")])
    assert await driver.delete_keys(["/d/x/data", "/d/x", "/d/x/absent", "/d/y", "/d/x/data"]) == [
        True,
        True,
        False,
        True,
        True,
    ]
    assert driver.ops["list_objects_v2"] == 2  # /d/x and /d/y; the paths inside /d/x list nothing
    assert not await store.exists("/d")


async def test_an_answer_only_the_client_follows_moves_every_call_to_it(
    counted: tuple[Counted, CheckedDriver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store in another region answers 301 or AuthorizationHeaderMalformed; botocore's client
    follows those (its region redirector), so the driver hands it the call and the ones after."""
    driver, store = counted

    def moved(*args: Any, **kwargs: Any) -> Any:
        raise Fallback("HeadObject: 301 PermanentRedirect")

    monkeypatch.setattr(SmallObjects, "_send", moved)
    await store.put_content("/f", b"through the client")
    assert await store.get_content("/f") == b"through the client"
    assert (await store.stat("/f")).size == 18
    assert driver.calls == {"put_object": 1, "get_object": 1, "head_object": 1}
    await store.delete("/f")
    assert driver.calls["delete_objects"] == 1


async def test_a_store_that_does_not_answer_is_unavailable(engine: S3Engine, clients: dict[str, Any]) -> None:
    """Connection errors come from botocore's HTTP session, so they read as the client's do: after
    the retries, a 503 for the registry's client, not a 500."""
    params = _params(engine, regionendpoint="http://127.0.0.1:9")  # discard: nothing listens
    client = make_client(params, 4)
    store = checked(S3Driver(settings_from_params(params), client))
    with pytest.raises(StorageUnavailable, match="did not answer"):
        await store.get_content("/x")


async def test_without_credentials_every_call_goes_through_the_client(engine: S3Engine) -> None:
    params = {k: v for k, v in _params(engine).items() if k not in ("accesskey", "secretkey")}
    client = make_client(params, 4)
    if client._request_signer._credentials is not None:
        pytest.skip("this machine's environment provides AWS credentials")
    assert S3Driver(settings_from_params(params), client)._small is None
    assert S3Driver(settings_from_params(_params(engine)), client, small=False)._small is None
