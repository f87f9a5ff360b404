"""Blob GET/HEAD/DELETE, ranges and ETags."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from tests.api.conftest import AppFactory
from tests.api.helpers import digest_of, error_codes, push_blob

pytestmark = pytest.mark.anyio
DATA = bytes(range(256)) * 40  # 10240 bytes


async def test_get_and_head_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "lib/app", DATA)
    r = await client.get(f"/v2/lib/app/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Content-Length"] == str(len(DATA))
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    h = await client.head(f"/v2/lib/app/blobs/{digest}")
    assert h.status_code == 200 and h.content == b""
    assert h.headers["Content-Length"] == str(len(DATA))
    assert h.headers["ETag"] == f'"{digest}"'


async def test_blob_is_only_visible_in_its_repository(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "a", DATA)
    r = await client.get(f"/v2/b/blobs/{digest}")
    assert r.status_code == 404
    assert error_codes(r) == ["BLOB_UNKNOWN"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, 10239),
        ("bytes=-500", 9740, 10239),
        ("bytes=10000-99999", 10000, 10239),
    ],
)
async def test_range_requests(client: httpx.AsyncClient, header: str, start: int, end: int) -> None:
    digest = await push_blob(client, "r", DATA)
    r = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206
    assert r.content == DATA[start : end + 1]
    assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"


async def test_unsatisfiable_range_is_416(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "r", DATA)
    r = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=20000-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert error_codes(r) == ["RANGE_INVALID"]


async def test_if_none_match_gives_304(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "r", DATA)
    r = await client.get(f"/v2/r/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'})
    assert r.status_code == 304 and r.content == b""


async def test_unknown_and_invalid_digests(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v2/r/blobs/{digest_of(b'nothing')}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "nocolon"):
        r = await client.get(f"/v2/r/blobs/{bad}")
        assert r.status_code == 400, bad
        assert error_codes(r) == ["DIGEST_INVALID"]


async def test_delete_blob_unlinks_it(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "d", DATA)
    r = await client.delete(f"/v2/d/blobs/{digest}")
    assert r.status_code == 202
    assert (await client.get(f"/v2/d/blobs/{digest}")).status_code == 404
    r = await client.delete(f"/v2/d/blobs/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]


async def test_delete_disabled_is_405(make_client: AppFactory) -> None:
    async with make_client({"storage": {"delete": {"enabled": False}}}) as client:
        digest = await push_blob(client, "d", DATA)
        r = await client.delete(f"/v2/d/blobs/{digest}")
        assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"]
        assert (await client.get(f"/v2/d/blobs/{digest}")).status_code == 200


async def test_sha512_blob(client: httpx.AsyncClient) -> None:
    digest = "sha512:" + hashlib.sha512(DATA).hexdigest()
    r = await client.post("/v2/s/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert r.status_code == 201, r.text
    r = await client.get(f"/v2/s/blobs/{digest}")
    assert r.status_code == 200 and r.content == DATA


async def test_empty_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "e", b"")
    r = await client.get(f"/v2/e/blobs/{digest}")
    assert r.status_code == 200 and r.content == b""


class _Signing:
    """A driver that signs download URLs, as an object store's would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    async def redirect_url(self, path: str, expires: float) -> str | None:
        return f"https://cdn.example{path}?expires={int(expires)}"


async def test_downloads_redirect_only_when_enabled_and_the_driver_signs(make_client: AppFactory) -> None:
    async with make_client(wrap=_Signing) as client:  # storage.redirect.disable defaults to false
        digest = await push_blob(client, "signed", b"signed bytes")
        r = await client.get(f"/v2/signed/blobs/{digest}")
        assert r.status_code == 307 and r.content == b""
        assert (
            r.headers["Location"]
            == f"https://cdn.example/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/data?expires=1200"
        )
        assert r.headers["Docker-Content-Digest"] == digest
        ranged = await client.get(f"/v2/signed/blobs/{digest}", headers={"Range": "bytes=0-5"})
        assert ranged.status_code == 206 and ranged.content == b"signed"  # ranges are served here
    disabled = {"storage": {"redirect": {"disable": True}}}
    async with make_client(disabled, wrap=_Signing) as client:
        digest = await push_blob(client, "signed", b"signed bytes")
        r = await client.get(f"/v2/signed/blobs/{digest}")
        assert r.status_code == 200 and r.content == b"signed bytes"
    async with make_client() as client:  # redirects on, but this driver signs no URLs: streamed
        digest = await push_blob(client, "plain", b"plain bytes")
        r = await client.get(f"/v2/plain/blobs/{digest}")
        assert r.status_code == 200 and r.content == b"plain bytes"
