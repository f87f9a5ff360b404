"""``POST /v2/<name>/blobs/uploads/?digest-algorithm=…`` (distribution-spec main, end-4c).

The session hashes its bytes with the algorithm asked for, so a sha512 upload is verified by its
running hash (no second read of the stored data), also when its chunks reach another worker; the
blob is stored and served under its sha512 address; an algorithm the registry cannot compute is
400 ``DIGEST_INVALID`` before any session exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.config import parse_config
from tests.api.conftest import AppFactory
from tests.api.helpers import digest_of, error_codes

pytestmark = pytest.mark.anyio
DATA = b"sha512 upload bytes " * 5000  # ~100 KB: past the bytes a commit holds back
SHA512 = "sha512:" + hashlib.sha512(DATA).hexdigest()


class CountHashes:
    """A driver that records each re-read of stored data to compute a digest (``hash_file``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hashed: list[str] = []

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    async def hash_file(self, path: str, algorithm: str) -> tuple[str, int]:
        self.hashed.append(algorithm)
        hasher, size = hashlib.new(algorithm), 0
        async for chunk in self.inner.read(path):
            hasher.update(chunk)
            size += len(chunk)
        return hasher.hexdigest(), size


@pytest.fixture
async def counted(make_client: AppFactory) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    spies: list[CountHashes] = []

    def wrap(driver: Any) -> CountHashes:
        spies.append(CountHashes(driver))
        return spies[-1]

    async with make_client(wrap=wrap) as client:
        yield client, spies[0].hashed


async def test_sha512_session_verified_by_its_running_hash(
    counted: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, hashed = counted
    r = await client.post("/v2/five/blobs/uploads/", params={"digest-algorithm": "sha512"})
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == "0-0" and r.headers["Docker-Upload-UUID"] in r.headers["Location"]
    r = await client.patch(r.headers["Location"], content=DATA[:40000], headers={"Content-Range": "0-39999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-39999"
    r = await client.patch(r.headers["Location"], content=DATA[40000:])
    assert r.status_code == 202
    r = await client.put(r.headers["Location"], params={"digest": SHA512})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == SHA512
    assert r.headers["Location"] == f"http://registry.test/v2/five/blobs/{SHA512}"
    assert hashed == []  # no re-read: the session hashed with sha512 as the bytes came
    got = await client.get(f"/v2/five/blobs/{SHA512}")
    assert got.status_code == 200 and got.content == DATA and got.headers["Docker-Content-Digest"] == SHA512
    assert (await client.head(f"/v2/five/blobs/{digest_of(DATA)}")).status_code == 404


async def test_without_the_hint_a_sha512_digest_is_checked_by_reading_back(
    counted: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, hashed = counted
    r = await client.post("/v2/five/blobs/uploads/")
    r = await client.put(r.headers["Location"], params={"digest": SHA512}, content=DATA)
    assert r.status_code == 201 and hashed == ["sha512"]


async def test_the_closing_digest_decides(counted: tuple[httpx.AsyncClient, list[str]]) -> None:
    """A hint, not a rule: a sha256 closing digest on a sha512 session is verified too (by
    reading back); a wrong sha512 one is 400 DIGEST_INVALID."""
    client, hashed = counted
    r = await client.post("/v2/five/blobs/uploads/", params={"digest-algorithm": "sha512"})
    r = await client.put(r.headers["Location"], params={"digest": digest_of(DATA)}, content=DATA)
    assert r.status_code == 201 and hashed == ["sha256"]
    r = await client.post("/v2/five/blobs/uploads/", params={"digest-algorithm": "sha512"})
    wrong = "sha512:" + hashlib.sha512(b"other").hexdigest()
    r = await client.put(r.headers["Location"], params={"digest": wrong}, content=DATA)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert (await client.head(f"/v2/five/blobs/{wrong}")).status_code == 404


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "blake3", "sha384", "SHA512", ""])
async def test_unsupported_algorithm_is_400(client: httpx.AsyncClient, algorithm: str) -> None:
    r = await client.post("/v2/five/blobs/uploads/", params={"digest-algorithm": algorithm})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    error = r.json()["errors"][0]
    assert "not supported" in error["message"] and "sha256, sha512" in error["message"]
    assert error["detail"] == {"digest-algorithm": algorithm}
    # Whatever else the POST carries: a one-request push or a mount.
    r = await client.post(
        "/v2/five/blobs/uploads/", params={"digest-algorithm": algorithm, "digest": SHA512}, content=DATA
    )
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert (await client.head(f"/v2/five/blobs/{SHA512}")).status_code == 404


async def test_one_request_push_uses_its_digest(counted: tuple[httpx.AsyncClient, list[str]]) -> None:
    client, hashed = counted
    r = await client.post(
        "/v2/five/blobs/uploads/", params={"digest-algorithm": "sha512", "digest": SHA512}, content=DATA
    )
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == SHA512
    assert hashed == []


async def test_mount_fallback_hashes_with_the_mount_digest_algorithm(
    counted: tuple[httpx.AsyncClient, list[str]],
) -> None:
    """A mount that cannot happen starts a session for that blob: hashed with its algorithm."""
    client, hashed = counted
    r = await client.post("/v2/five/blobs/uploads/", params={"mount": SHA512, "from": "elsewhere"})
    assert r.status_code == 202, r.text
    r = await client.put(r.headers["Location"], params={"digest": SHA512}, content=DATA)
    assert r.status_code == 201 and hashed == []
    # Now it can be mounted, by its sha512 digest.
    r = await client.post("/v2/other/blobs/uploads/", params={"mount": SHA512, "from": "five"})
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == SHA512


async def test_the_algorithm_reaches_another_worker(tmp_path: Path) -> None:
    """Two workers on one store: the session starts on one, its bytes arrive at the other, which
    reads the session's algorithm from storage and hashes with it."""
    tree = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}}}
    spies: list[CountHashes] = []

    def wrap(driver: Any) -> CountHashes:
        spies.append(CountHashes(driver))
        return spies[-1]

    first = create_services(parse_config(tree))
    second = create_services(parse_config(tree), wrap_driver=wrap)
    base = "http://registry.test"
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=RegistryApp(first)), base_url=base) as one,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=RegistryApp(second)), base_url=base) as two,
    ):
        r = await one.post("/v2/five/blobs/uploads/", params={"digest-algorithm": "sha512"})
        location = r.headers["Location"]
        upload_dir = (
            tmp_path / "root/docker/registry/v2/repositories/five/_uploads" / r.headers["Docker-Upload-UUID"]
        )
        assert (upload_dir / "digestalgorithm").read_text() == "sha512"
        r = await two.patch(location, content=DATA)
        r = await two.put(r.headers["Location"], params={"digest": SHA512})
        assert r.status_code == 201, r.text
        assert spies[0].hashed == []
        assert not upload_dir.exists()  # the session's files go with it
        assert (await one.get(f"/v2/five/blobs/{SHA512}")).content == DATA
