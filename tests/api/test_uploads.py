"""Upload sessions: monolithic, streamed, chunked (416 rules), status, cancel, mounts."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import digest_of, error_codes, push_blob

pytestmark = pytest.mark.anyio
DATA = b"0123456789abcdef" * 4096  # 64 KiB


async def start(client: httpx.AsyncClient, name: str = "up") -> str:
    r = await client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["Range"] == "0-0"
    assert r.headers["Docker-Upload-UUID"] in r.headers["Location"]
    return r.headers["Location"]


async def test_post_then_put(client: httpx.AsyncClient) -> None:
    location = await start(client)
    assert location.startswith("http://registry.test/v2/up/blobs/uploads/")
    digest = digest_of(DATA)
    r = await client.put(location, params={"digest": digest}, content=DATA)
    assert r.status_code == 201
    assert r.headers["Location"] == f"http://registry.test/v2/up/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert (await client.get(f"/v2/up/blobs/{digest}")).content == DATA
    # The session is gone once completed.
    assert (await client.get(location)).status_code == 404


async def test_streamed_patch_then_put(client: httpx.AsyncClient) -> None:
    location = await start(client)
    r = await client.patch(location, content=DATA[:1000])
    assert r.status_code == 202 and r.headers["Range"] == "0-999"
    r = await client.patch(r.headers["Location"], content=DATA[1000:])
    assert r.headers["Range"] == f"0-{len(DATA) - 1}"
    r = await client.put(r.headers["Location"], params={"digest": digest_of(DATA)})
    assert r.status_code == 201


async def test_chunked_upload_and_416_rules(client: httpx.AsyncClient) -> None:
    location = await start(client)
    first, second = DATA[:30000], DATA[30000:]
    # Out of order: the first chunk must start at 0.
    r = await client.patch(location, content=second, headers={"Content-Range": f"30000-{len(DATA) - 1}"})
    assert r.status_code == 416 and error_codes(r) == ["RANGE_INVALID"]
    assert r.headers["Range"] == "0-0"
    r = await client.patch(location, content=first, headers={"Content-Range": "0-29999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-29999"
    # Replaying the accepted chunk is refused.
    r = await client.patch(location, content=first, headers={"Content-Range": "0-29999"})
    assert r.status_code == 416
    status = await client.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-29999"
    assert status.headers["Location"] == location
    r = await client.patch(location, content=second, headers={"Content-Range": f"30000-{len(DATA) - 1}"})
    assert r.status_code == 202
    r = await client.put(location, params={"digest": digest_of(DATA)}, headers={"Content-Length": "0"})
    assert r.status_code == 201
    assert (await client.get(f"/v2/up/blobs/{digest_of(DATA)}")).content == DATA


async def test_final_chunk_on_put(client: httpx.AsyncClient) -> None:
    location = await start(client)
    await client.patch(location, content=DATA[:100], headers={"Content-Range": "0-99"})
    r = await client.put(
        location,
        params={"digest": digest_of(DATA)},
        content=DATA[100:],
        headers={"Content-Range": f"100-{len(DATA) - 1}"},
    )
    assert r.status_code == 201
    bad = await start(client)
    r = await client.put(
        bad,
        params={"digest": digest_of(DATA)},
        content=DATA[5:],
        headers={"Content-Range": f"5-{len(DATA) - 1}"},
    )
    assert r.status_code == 416


async def test_content_range_errors(client: httpx.AsyncClient) -> None:
    location = await start(client)
    r = await client.patch(location, content=b"abc", headers={"Content-Range": "zero-two"})
    assert r.status_code == 400 and error_codes(r) == ["BLOB_UPLOAD_INVALID"]
    r = await client.patch(location, content=b"abc", headers={"Content-Range": "0-9"})
    assert r.status_code == 400 and error_codes(r) == ["SIZE_INVALID"]
    r = await client.patch(location, content=b"abc", headers={"Content-Range": "5-2"})
    assert r.status_code == 416


async def test_digest_mismatch_stores_nothing(client: httpx.AsyncClient) -> None:
    location = await start(client)
    wrong = digest_of(b"something else")
    r = await client.put(location, params={"digest": wrong}, content=DATA)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert (await client.get(f"/v2/up/blobs/{wrong}")).status_code == 404
    assert (await client.get(f"/v2/up/blobs/{digest_of(DATA)}")).status_code == 404
    assert (await client.get(location)).status_code == 404  # the upload was discarded
    r = await client.post("/v2/up/blobs/uploads/", params={"digest": wrong}, content=DATA)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


async def test_put_without_digest(client: httpx.AsyncClient) -> None:
    location = await start(client)
    r = await client.put(location, content=DATA)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = await client.put(location, params={"digest": "sha256:short"}, content=DATA)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


async def test_cancel_and_unknown_sessions(client: httpx.AsyncClient) -> None:
    location = await start(client)
    assert (await client.delete(location)).status_code == 204
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = await client.request(
            method, location, params={"digest": digest_of(b"")} if method == "PUT" else None
        )
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"], method
    r = await client.get("/v2/up/blobs/uploads/not-a-uuid")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    # A session belongs to its repository.
    other = await start(client, "first")
    r = await client.get(other.replace("/v2/first/", "/v2/second/"))
    assert r.status_code == 404


async def test_mount_from_repository(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "source", DATA)
    r = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"})
    assert r.status_code == 201
    assert r.headers["Location"].endswith(f"/v2/target/blobs/{digest}")
    assert (await client.get(f"/v2/target/blobs/{digest}")).content == DATA


async def test_mount_falls_back_to_upload(client: httpx.AsyncClient) -> None:
    unknown = digest_of(b"never pushed")
    r = await client.post("/v2/target/blobs/uploads/", params={"mount": unknown, "from": "source"})
    assert r.status_code == 202 and "/v2/target/blobs/uploads/" in r.headers["Location"]
    # Known blob, but not in the named source repository: no mount.
    digest = await push_blob(client, "elsewhere", DATA)
    r = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"})
    assert r.status_code == 202
    r = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "Bad Name"})
    assert r.status_code == 400 and error_codes(r) == ["NAME_INVALID"]


async def test_automatic_mount_without_from(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "source", DATA)
    r = await client.post("/v2/auto/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 201
    assert (await client.head(f"/v2/auto/blobs/{digest}")).status_code == 200
