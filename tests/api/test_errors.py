"""Names, routes, read-only mode, and the error table: every code has a request that yields it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dockyard.errors import ErrorCode, StorageFull
from tests.api.conftest import AppFactory
from tests.api.helpers import digest_of, error_codes, push_blob, push_image

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "path",
    [
        "/v2/UPPER/tags/list",
        "/v2/a..b/tags/list",
        "/v2/../etc/tags/list",
        "/v2/%2e%2e/x/tags/list",
        "/v2/x/%2e%2e/y/tags/list",
        "/v2//abs/tags/list",
        "/v2/a%00b/tags/list",
        "/v2/trailing-/tags/list",
        "/v2/_hidden/tags/list",
        "/v2/" + "a" * 256 + "/tags/list",
        "/v2/" + "/".join(["abc"] * 70) + "/tags/list",
    ],
)
async def test_invalid_names_are_refused_before_storage(make_client: AppFactory, path: str) -> None:
    touched: list[str] = []

    class Spy:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, attr: str) -> Any:
            touched.append(attr)
            return getattr(self.inner, attr)

    async with make_client(wrap=Spy) as client:
        touched.clear()  # wrapping it read the driver's name and which batches it has
        r = await client.get(path)
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        assert error_codes(r) == ["NAME_INVALID"]
    assert touched == []


async def test_unknown_routes_and_methods(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/x/unknown/thing")
    assert r.status_code == 404 and error_codes(r) == ["NOT_FOUND"]
    r = await client.get("/nothing")
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    r = await client.post("/v2/x/tags/list")
    assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"]
    assert r.headers["Allow"] == "GET"


async def test_base_and_health(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/")
    assert r.status_code == 200 and r.content == b"{}"
    assert r.headers["Content-Type"] == "application/json" and r.headers["Content-Length"] == "2"
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    r = await client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "storage": "ok", "coordinator": "ok"}


async def test_read_only_mode(make_client: AppFactory) -> None:
    async with make_client() as writable:
        await push_image(writable, "ro", "v1")
    async with make_client({"storage": {"maintenance": {"readonly": {"enabled": True}}}}) as client:
        for method, path in [
            ("POST", "/v2/ro/blobs/uploads/"),
            ("PUT", "/v2/ro/manifests/v2"),
            ("DELETE", "/v2/ro/manifests/v1"),
            ("PATCH", "/v2/ro/blobs/uploads/00000000-0000-0000-0000-000000000000"),
        ]:
            r = await client.request(method, path)
            assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"], (method, path)
            assert "read-only" in r.json()["errors"][0]["message"]


async def test_prefix_and_configured_host(make_client: AppFactory) -> None:
    async with make_client({"http": {"prefix": "/registry", "host": "https://reg.example.com"}}) as client:
        assert (await client.get("/v2/")).status_code == 404
        r = await client.post("/registry/v2/p/blobs/uploads/")
        assert r.status_code == 202
        assert r.headers["Location"].startswith("https://reg.example.com/registry/v2/p/blobs/uploads/")
        r = await client.put(
            r.headers["Location"].replace("https://reg.example.com", ""), params={"digest": digest_of(b"")}
        )
        assert r.status_code == 201


async def test_forwarded_headers_shape_locations(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v2/p/blobs/uploads/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "front.example"}
    )
    assert r.headers["Location"].startswith("https://front.example/v2/p/blobs/uploads/")


async def test_configured_static_headers(make_client: AppFactory) -> None:
    async with make_client({"http": {"headers": {"X-Content-Type-Options": ["nosniff"]}}}) as client:
        r = await client.get("/v2/")
        assert r.headers["X-Content-Type-Options"] == "nosniff"


class _Faulty:
    """A driver whose writes fail the way a full disk or a broken backend does."""

    def __init__(self, inner: Any, error: Exception) -> None:
        self.inner = inner
        self.error = error

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    async def put_content(self, path: str, data: bytes, *, if_absent: bool = False) -> bool:
        if "/_uploads/" in path:
            raise self.error
        result: bool = await self.inner.put_content(path, data, if_absent=if_absent)
        return result

    async def put_many(self, items: list[tuple[str, bytes]]) -> None:
        for path, data in items:  # not the inner driver's batch, which would not fail
            await self.put_content(path, data)


async def test_storage_full_is_507(make_client: AppFactory) -> None:
    async with make_client(wrap=lambda d: _Faulty(d, StorageFull("no space left on device"))) as client:
        r = await client.post("/v2/full/blobs/uploads/")
        assert r.status_code == 507 and error_codes(r) == ["UNAVAILABLE"]
        assert "no space" in r.json()["errors"][0]["message"]
        assert (await client.get("/v2/")).status_code == 200


async def test_unexpected_failure_is_500_without_traceback(make_client: AppFactory) -> None:
    async with make_client(wrap=lambda d: _Faulty(d, RuntimeError("secret internals"))) as client:
        r = await client.post("/v2/broken/blobs/uploads/")
        assert r.status_code == 500 and error_codes(r) == ["UNKNOWN"]
        assert "secret internals" not in r.text and "Traceback" not in r.text


# Each code of the table, the request that yields it, and the status expected. The auth codes
# (UNAUTHORIZED, DENIED, TOOMANYREQUESTS) belong to the access controllers and are tested there.
async def test_every_error_code_is_reachable(client: httpx.AsyncClient) -> None:
    await push_image(client, "codes", "v1")
    blob = await push_blob(client, "codes", b"data")
    loc = (await client.post("/v2/codes/blobs/uploads/")).headers["Location"]
    seen: dict[str, int] = {}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/v2/codes/blobs/{digest_of(b'x')}", {}),
        ("PATCH", loc, {"headers": {"Content-Range": "bad"}, "content": b"x"}),
        ("GET", "/v2/codes/blobs/uploads/00000000-0000-0000-0000-000000000000", {}),
        ("GET", "/v2/codes/blobs/sha256:1", {}),
        (
            "PUT",
            "/v2/codes/manifests/t",
            {
                "content": b'{"schemaVersion":2,"config":{"mediaType":"a","digest":"%s","size":1},"layers":[]}'
                % digest_of(b"q").encode(),
                "headers": {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            },
        ),
        (
            "PUT",
            "/v2/codes/manifests/t",
            {"content": b"{", "headers": {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}},
        ),
        (
            "PUT",
            "/v2/codes/manifests/t",
            {
                "content": b"x" * (4 * 1024 * 1024 + 1),
                "headers": {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            },
        ),
        ("GET", "/v2/codes/manifests/nope", {}),
        ("GET", "/v2/Codes/tags/list", {}),
        ("GET", "/v2/nobody/tags/list", {}),
        ("PATCH", loc, {"headers": {"Content-Range": "0-9"}, "content": b"x"}),
        ("PUT", "/v2/codes/manifests/-t", {"content": b"{}"}),
        ("DELETE", "/v2/codes/tags/list", {}),
        ("PATCH", loc, {"headers": {"Content-Range": "5-5"}, "content": b"x"}),
        ("GET", f"/v2/codes/blobs/{blob}", {"headers": {"Range": "bytes=100-"}}),
        ("GET", "/v2/codes/tags/list?n=-1", {}),
        ("GET", "/v2/codes/unknown", {}),
        ("POST", "/admin/v1/gc", {"content": b"[1]"}),
    ]
    for method, path, kwargs in requests:
        r = await client.request(method, path, **kwargs)
        for code in error_codes(r):
            seen[code] = r.status_code
    expected = {
        spec.code: spec.status
        for spec in (c.spec for c in ErrorCode)
        # GC_RUNNING needs two concurrent collections: tests/storage/test_gc.py covers it.
        # TIMEOUT needs a body that stops arriving: tests/live/test_slow_clients.py covers it.
        if spec.code
        not in {
            "UNAUTHORIZED",
            "DENIED",
            "TOOMANYREQUESTS",
            "UNAVAILABLE",
            "UNKNOWN",
            "GC_RUNNING",
            "TIMEOUT",
        }
    }
    # Codes shared by several table entries (MANIFEST_INVALID 400/413, TAG_INVALID 400/414,
    # UNSUPPORTED, RANGE_INVALID) are checked for the code only here; their statuses are asserted
    # in the focused tests (TAG_INVALID's: tests/api/test_manifest_tags.py).
    assert set(seen) == set(expected)
    for code in (
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "PAGINATION_NUMBER_INVALID",
        "NOT_FOUND",
    ):
        assert seen[code] == expected[code], code
