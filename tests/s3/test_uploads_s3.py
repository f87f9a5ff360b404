"""Blob uploads through the registry API on a real object store (SeaweedFS), where the bytes of an
open writer sit in a multipart upload nobody can read yet: the pushes that must digest the stored
data rather than a running hash (another algorithm than sha256, or a session finished by another
app instance than the one that took its last chunk) must still see every byte."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from dockyard.app import create_app
from dockyard.config import parse_config
from tests.servers.s3 import S3Engine

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app_client(engine: S3Engine, root: str) -> httpx.AsyncClient:
    """One registry app instance on the store ``root``: its own coordinator and running hashes,
    as another process or replica has."""
    storage = {"s3": engine.driver_params(engine.shared, rootdirectory=root), "redirect": {"disable": True}}
    app = create_app(parse_config({"storage": storage}))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")


@pytest.fixture
async def two(seaweedfs: S3Engine) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    root = seaweedfs.root("uploads")
    async with _app_client(seaweedfs, root) as one, _app_client(seaweedfs, root) as other:
        yield one, other


async def _pulled(client: httpx.AsyncClient, name: str, digest: str) -> bytes:
    r = await client.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200, r.text
    return r.content


async def test_sha512_blob_pushed_in_one_request(two: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    client, _ = two
    data = b"sha512 bytes on an object store"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    r = await client.post("/v2/s/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert await _pulled(client, "s", digest) == data


@pytest.mark.parametrize("last", [b"", b" and the last bytes in the PUT"])
async def test_chunked_upload_finished_by_another_instance(
    two: tuple[httpx.AsyncClient, httpx.AsyncClient], last: bytes
) -> None:
    one, other = two
    chunks = [b"first chunk, ", b"second chunk"]
    data = b"".join(chunks) + last
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = await one.post("/v2/c/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    offset = 0
    for chunk in chunks:
        headers: dict[str, Any] = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
        }
        r = await one.patch(location, content=chunk, headers=headers)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        offset += len(chunk)
    r = await other.put(location, params={"digest": digest}, content=last)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert await _pulled(other, "c", digest) == data
    assert await _pulled(one, "c", digest) == data
