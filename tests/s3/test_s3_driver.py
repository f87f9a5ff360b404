"""What the S3 driver does beyond the shared suite, on both engines: distribution's key layout,
multipart writers that span parts and reopenings, large copies, cleanup of abandoned uploads,
presigned URLs, and configuration the way distribution reads it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from dockyard.config import load_config
from dockyard.errors import PathNotFound
from dockyard.storage.drivers import create_driver
from dockyard.storage.drivers.checked import CheckedDriver, checked
from dockyard.storage.drivers.s3 import S3Driver
from dockyard.storage.drivers.s3_client import MIN_PART, S3ConfigError, make_client, settings_from_params
from dockyard.storage.drivers.s3_writer import UploadStateError
from tests.servers.s3 import S3Engine

MiB = 1 << 20


@pytest.fixture(params=["seaweedfs", "ceph_rgw"])
def engine(request: pytest.FixtureRequest) -> S3Engine:
    engine: S3Engine = request.getfixturevalue(request.param)
    return engine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    return {}


@pytest.fixture
async def s3(engine: S3Engine, clients: dict[str, Any]) -> AsyncIterator[CheckedDriver]:
    """A driver with the smallest parts S3 allows and copies split early, in its own root."""
    params = engine.driver_params(
        engine.shared,
        rootdirectory=engine.root("registry"),
        chunksize=MIN_PART,
        multipartcopychunksize=MIN_PART,
        multipartcopythresholdsize=MIN_PART,
    )
    client = clients.setdefault(engine.name, make_client(params, 64))
    yield checked(S3Driver(settings_from_params(params), client))


def _pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(b"%d" % seed).digest() * 4096  # 128 KiB, not periodic at part sizes
    return (block * (size // len(block) + 1))[:size]


async def _read(store: CheckedDriver, path: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(path)])


def _root(store: CheckedDriver) -> str:
    assert isinstance(store.inner, S3Driver)
    return store.inner.settings.root.lstrip("/")


def _bucket_keys(engine: S3Engine, store: CheckedDriver) -> list[str]:
    """Every key under the driver's root, without the root."""
    answer = engine.client().list_objects_v2(Bucket=engine.shared, Prefix=_root(store) + "/")
    return sorted(item["Key"][len(_root(store)) + 1 :] for item in answer.get("Contents", ()))


def _uploads(engine: S3Engine, store: CheckedDriver) -> list[dict[str, Any]]:
    answer = engine.client().list_multipart_uploads(Bucket=engine.shared, Prefix=_root(store) + "/")
    return list(answer.get("Uploads", ()))


@pytest.mark.anyio
async def test_keys_are_distributions_layout(engine: S3Engine, s3: CheckedDriver) -> None:
    """distribution's s3Path: rootdirectory + path, without the leading slash."""
    await s3.put_content("/docker/registry/v2/repositories/a/b/_layers/sha256/x/link", b"sha256:x")
    key = f"{_root(s3)}/docker/registry/v2/repositories/a/b/_layers/sha256/x/link"
    assert _root(s3).startswith("registry-")
    assert engine.client().get_object(Bucket=engine.shared, Key=key)["Body"].read() == b"sha256:x"
    await s3.delete("/docker")
    assert _bucket_keys(engine, s3) == []


@pytest.mark.anyio
async def test_writer_spans_parts_and_reopenings(engine: S3Engine, s3: CheckedDriver) -> None:
    """Three sessions on one path: a multipart upload of several parts that stays open when the
    writer closes (its tail in the object at the path), a reopening that continues it, and a
    reopening that only closes; then a commit that completes it and copies the result to its
    destination in parts. Until then the upload is not readable, and says so."""
    data = _pattern(17 * MiB + 12345)
    pieces = [data[: 6 * MiB + 7], data[6 * MiB + 7 : 13 * MiB], data[13 * MiB :]]
    hasher = hashlib.sha256()
    writer = await s3.writer("/up/data")
    for start in range(0, len(pieces[0]), MiB):
        await writer.write(pieces[0][start : start + MiB], hasher)
    assert _uploads(engine, s3), "parts go to a multipart upload while the writer is open"
    await writer.close()
    assert len(_uploads(engine, s3)) == 1, "the upload stays open for the next writer"
    assert (await s3.stat("/up/data")).size == len(pieces[0])
    with pytest.raises(UploadStateError, match="unfinished"):
        await _read(s3, "/up/data")

    writer = await s3.writer("/up/data", create=False)
    assert writer.size == len(pieces[0])
    await writer.write(pieces[1], hasher)
    await writer.close()
    assert (await s3.stat("/up/data")).size == 13 * MiB
    assert len(_uploads(engine, s3)) == 1

    writer = await s3.writer("/up/data", create=False)
    await writer.close()  # nothing written: the object stays as it is
    writer = await s3.writer("/up/data", create=False)
    assert await writer.commit("/blobs/b/data", [("/link", b"b")], ["/up"], data=pieces[2])
    hasher.update(pieces[2])
    stored = await _read(s3, "/blobs/b/data")
    assert len(stored) == len(data) and stored == data
    assert hashlib.sha256(stored).hexdigest() == hasher.hexdigest()
    assert await s3.get_content("/link") == b"b" and not await s3.exists("/up/data")
    assert await _read(s3, "/blobs/b/data") == data
    assert _bucket_keys(engine, s3) == ["blobs/b/data", "link"]
    assert not _uploads(engine, s3)
    await s3.delete_many(["/blobs", "/link"])


def _traffic(store: CheckedDriver) -> tuple[int, int]:
    assert isinstance(store.inner, S3Driver)
    return store.inner.traffic.sent, store.inner.traffic.copied


@pytest.mark.anyio
async def test_a_chunked_upload_moves_each_byte_once(engine: S3Engine, s3: CheckedDriver) -> None:
    """Five PATCH-like sessions of 5.5 MiB, each a writer of its own (as on another replica),
    then the commit: the store takes each byte once, plus the tails under the part minimum sent
    again with the next request, and copies the blob once, to its destination. Copying the
    object again at every session (what an upload completed at each close costs) moves
    1 + 2 + 3 + 4 sessions' bytes more: quadratic in the length of the upload."""
    sessions, piece = 5, 5 * MiB + MiB // 2
    data = _pattern(sessions * piece, seed=3)
    for i in range(sessions):
        writer = await s3.writer("/q/data", create=i == 0)
        assert writer.size == i * piece
        await writer.write(data[i * piece : (i + 1) * piece])
        await writer.close()
    sent, copied = _traffic(s3)
    assert copied == 0
    assert len(data) <= sent <= len(data) + sessions * MIN_PART
    writer = await s3.writer("/q/data", create=False)
    assert await writer.commit("/blobs/q/data", [], ["/q"])
    assert _traffic(s3)[1] - copied == len(data), "one copy, to the content address"
    assert _traffic(s3)[0] - sent < MIN_PART, "the commit sends only the last tail"
    assert await _read(s3, "/blobs/q/data") == data
    assert not _uploads(engine, s3) and _bucket_keys(engine, s3) == ["blobs/q/data"]
    await s3.delete("/blobs")


@pytest.mark.anyio
async def test_parts_of_a_writer_that_died_before_closing_are_not_used(
    engine: S3Engine, s3: CheckedDriver
) -> None:
    """A writer sends a part and dies before writing the tail object: the next writer numbers
    its parts past the dead one's (SeaweedFS lists a part number sent twice twice), and the
    result holds only what the closed writers wrote."""
    kept, lost, rest = _pattern(6 * MiB, seed=4), _pattern(5 * MiB, seed=5), _pattern(7 * MiB, seed=6)
    writer = await s3.writer("/dead2/data")
    await writer.write(kept)
    await writer.close()
    dying = await s3.writer("/dead2/data", create=False)
    await dying.write(lost)  # tail + lost >= one part: sent, but never recorded
    writer = await s3.writer("/dead2/data", create=False)
    assert writer.size == len(kept)
    await writer.write(rest)
    await writer.close()
    assert await s3.cleanup(time.time() + 60) == 0, "a pending upload lives as long as its path"
    writer = await s3.writer("/dead2/data", create=False)
    await writer.flush()
    assert await _read(s3, "/dead2/data") == kept + rest
    await writer.close()
    await s3.delete("/dead2")
    assert not _uploads(engine, s3) and _bucket_keys(engine, s3) == []


@pytest.mark.anyio
async def test_small_commit_is_one_put_at_the_destination(engine: S3Engine, s3: CheckedDriver) -> None:
    writer = await s3.writer("/up2/data")
    await writer.write(b"small blob")
    assert not _uploads(engine, s3)
    assert await writer.commit("/blobs/s/data", [], ["/up2"])
    assert await s3.get_content("/blobs/s/data") == b"small blob"
    assert _bucket_keys(engine, s3) == ["blobs/s/data"]
    await s3.delete("/blobs")


@pytest.mark.anyio
async def test_large_copy_goes_in_parts(engine: S3Engine, s3: CheckedDriver) -> None:
    """Above the threshold a copy is UploadPartCopy ranges; a remainder under 5 MiB joins the
    range before it (11 MiB in 5 MiB chunks: 5 + 6)."""
    data = _pattern(11 * MiB, seed=2)
    writer = await s3.writer("/c/src")
    await writer.write(data)
    await writer.flush()  # the bytes become the object at the path
    await writer.close()
    await s3.copy("/c/src", "/c/dst")
    assert await _read(s3, "/c/dst") == data
    head = engine.client().head_object(Bucket=engine.shared, Key=f"{_root(s3)}/c/dst")
    assert head["ETag"].strip('"').endswith("-2")  # a multipart object of two parts
    await s3.delete("/c")


async def _renews_last_modified(s3: CheckedDriver, path: str, renew: Callable[[], Awaitable[object]]) -> None:
    """``renew`` gives ``path`` a later Last-Modified. The store stamps whole seconds from its
    own clock, so this polls until the next second has come instead of ordering within one."""
    before = (await s3.stat(path)).mtime
    for _ in range(25):
        await asyncio.sleep(0.2)
        await renew()
        if (await s3.stat(path)).mtime > before:
            return
    pytest.fail("Last-Modified never changed")


@pytest.mark.anyio
async def test_commit_onto_stored_content_renews_it(s3: CheckedDriver) -> None:
    """The suite's check of this needs stored times it can set; here the store's clock moves."""
    await s3.put_content("/blobs/k/data", b"kept")

    async def commit_again() -> None:
        writer = await s3.writer("/up3/data")
        await writer.write(b"kept")
        assert await writer.commit("/blobs/k/data", [], ["/up3"]) is False

    await _renews_last_modified(s3, "/blobs/k/data", commit_again)
    assert await s3.get_content("/blobs/k/data") == b"kept" and not await s3.exists("/up3")
    await s3.delete("/blobs")


@pytest.mark.anyio
async def test_cleanup_aborts_uploads_of_writers_that_never_closed(
    engine: S3Engine, s3: CheckedDriver
) -> None:
    writer = await s3.writer("/dead/data")
    await writer.write(_pattern(MIN_PART + 1))  # a part went out; then the process "died"
    assert len(_uploads(engine, s3)) == 1
    assert await s3.cleanup(time.time() - 3600) == 0  # too recent
    assert await s3.cleanup(time.time() + 60) == 1
    assert not _uploads(engine, s3)
    assert _bucket_keys(engine, s3) == []


@pytest.mark.anyio
async def test_abort_drops_parts_and_object(engine: S3Engine, s3: CheckedDriver) -> None:
    await s3.put_content("/ab/data", b"")
    writer = await s3.writer("/ab/data", create=False)
    await writer.write(_pattern(MIN_PART + 10))
    await writer.abort()
    assert not _uploads(engine, s3) and _bucket_keys(engine, s3) == []
    with pytest.raises(PathNotFound):
        await s3.writer("/ab/data", create=False)


@pytest.mark.anyio
async def test_presigned_url_serves_the_object_and_refuses_tampering(s3: CheckedDriver) -> None:
    await s3.put_content("/p/blob", b"presigned")
    url = await s3.inner.redirect_url("/p/blob", 60)
    assert url is not None
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == b"presigned"
        ranged = await client.get(url, headers={"Range": "bytes=3-5"})
        assert ranged.status_code == 206 and ranged.content == b"sig"
        assert (await client.get(url.replace("p/blob", "p/blob2"))).status_code == 403
    await s3.delete("/p")


@pytest.mark.anyio
async def test_config_from_distributions_environment(
    engine: S3Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``REGISTRY_STORAGE_S3_*`` selects and configures the driver, credentials come from the
    standard AWS environment when the section has none."""
    bucket, root = engine.shared, engine.root("env")
    for key in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "PROFILE"):
        monkeypatch.delenv(f"AWS_{key}", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", engine.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", engine.secret_key)
    environ = {
        "REGISTRY_STORAGE": "s3",
        "REGISTRY_STORAGE_S3_REGION": "us-east-1",
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": engine.url,
        "REGISTRY_STORAGE_S3_BUCKET": bucket,
        "REGISTRY_STORAGE_S3_ROOTDIRECTORY": root,
        "REGISTRY_STORAGE_S3_SECURE": "false",
        "REGISTRY_STORAGE_S3_CHUNKSIZE": str(6 * MiB),
    }
    config = load_config(None, environ)
    name, params = config.storage.driver()
    assert name == "s3" and params["chunksize"] == 6 * MiB and params["accesskey"] is None
    store = create_driver(name, params)
    await store.put_content("/x", b"env")
    keys = engine.client().list_objects_v2(Bucket=bucket, Prefix=root[1:]).get("Contents", [])
    assert [k["Key"] for k in keys] == [f"{root[1:]}/x"]
    await store.delete("/x")


def test_settings_refuse_parts_below_the_s3_minimum() -> None:
    with pytest.raises(S3ConfigError, match="chunksize"):
        settings_from_params({"bucket": "b", "chunksize": MIN_PART - 1})
    with pytest.raises(S3ConfigError, match="bucket"):
        settings_from_params({})
    settings = settings_from_params({"bucket": "b", "rootdirectory": "/a/b/"})
    assert settings.key("/docker/registry/v2/x") == "a/b/docker/registry/v2/x"
    assert settings_from_params({"bucket": "b"}).key("/docker/x") == "docker/x"
    assert settings.chunk_size == 10 * MiB
    encrypted = settings_from_params({"bucket": "b", "encrypt": True, "keyid": "k"})
    assert encrypted.create_args == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k"}
