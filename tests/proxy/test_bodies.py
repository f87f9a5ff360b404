"""Blob bodies over the network (``proxy.bodies``, aiohttp): a real upstream on loopback (an
aiohttp server) that asks for a token, redirects, sends wrong bytes or breaks off mid-body. The
other proxy tests inject an httpx transport, which keeps every request on httpx."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from dockyard.app import create_services
from dockyard.client import proxies
from dockyard.client.proxies import proxy_route
from dockyard.config import parse_config
from dockyard.oci.digest import Digest
from dockyard.proxy import bodies
from dockyard.proxy.inflight import FillFailed, LiveSource
from dockyard.storage.blobs import StoredBlob

pytestmark = pytest.mark.anyio
BLOB = bytes(range(256)) * 4096  # 1 MiB
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
TOKEN = "t0k3n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Faulty:
    """What the upstream does to the next blob GET."""

    def __init__(self) -> None:
        self.fault: str | None = None
        self.log: list[str] = []
        self.seen: list[tuple[str, str | None]] = []  # each blob GET's Host and Proxy-Authorization


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, Faulty]]:
    state = Faulty()

    async def token(request: web.Request) -> web.Response:
        state.log.append(f"token {request.query.get('scope')}")
        return web.json_response({"token": TOKEN, "expires_in": 300})

    async def blob(request: web.Request) -> web.StreamResponse:
        state.log.append(f"{request.method} {request.path}")
        state.seen.append((request.host, request.headers.get("Proxy-Authorization")))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f'Bearer realm="http://{request.host}/token",service="up",scope="repository:x:pull"'
            return web.json_response({"errors": []}, status=401, headers={"WWW-Authenticate": realm})
        if request.match_info["digest"] != DIGEST:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN", "message": "no"}]}, status=404)
        if state.fault == "redirect":
            raise web.HTTPTemporaryRedirect("/cdn/blob")
        if state.fault == "elsewhere":  # another origin: the same server under another name
            raise web.HTTPTemporaryRedirect(f"http://localhost:{request.url.port}/cdn/blob")
        return await send(request)

    async def cdn(request: web.Request) -> web.StreamResponse:
        state.log.append(f"cdn auth={request.headers.get('Authorization')}")
        return await send(request)

    async def send(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(BLOB))})
        await response.prepare(request)
        data = BLOB if state.fault != "corrupt" else b"\xff" + BLOB[1:]
        await response.write(data[: len(data) // 2])
        if state.fault == "cut":
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(data[len(data) // 2 :])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/token", token)
    app.router.add_get("/v2/library/x/blobs/{digest}", blob)
    app.router.add_get("/cdn/blob", cdn)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        await runner.cleanup()


def proxy(url: str, tmp_path: Path) -> Any:
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}},
        "proxy": {"remoteurl": url, "spooldirectory": str(tmp_path / "spool")},
    }
    return create_services(parse_config(tree))


async def drain(source: Any) -> bytes:
    return b"".join([c async for c in source.read()])


@pytest.mark.parametrize("fault", [None, "redirect", "elsewhere"])
async def test_a_blob_through_the_token_flow_and_a_redirect(
    upstream: tuple[str, Faulty], tmp_path: Path, fault: str | None
) -> None:
    url, state = upstream
    state.fault = fault
    services = proxy(url, tmp_path)
    model = services.model
    source = await model.open_blob("library/x", Digest.parse(DIGEST))
    assert isinstance(source, LiveSource)
    assert await drain(source) == BLOB
    assert isinstance(await model.open_blob("library/x", Digest.parse(DIGEST)), StoredBlob)
    path = f"GET /v2/library/x/blobs/{DIGEST}"
    assert state.log[:3] == [path, "token repository:x:pull", path]
    if fault == "redirect":  # the token stays with the upstream's origin... which is this one
        assert state.log[3] == f"cdn auth=Bearer {TOKEN}"
    if fault == "elsewhere":  # ...and is not sent to another
        assert state.log[3] == "cdn auth=None"
    await model.close(5)


async def test_the_environments_proxy_is_used_and_looked_up_once(
    upstream: tuple[str, Faulty], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    """The upstream is named by a host only the proxy knows; the proxy is the upstream's own
    server, which answers a request for any host (a proxied request keeps its Host)."""
    url, state = upstream
    state.fault = "redirect"
    monkeypatch.setenv("HTTP_PROXY", f"http://pu:pp@{url.removeprefix('http://')}")
    looked_up: list[str] = []

    def counted(target: URL) -> proxies.ProxyRoute:
        looked_up.append(str(target))
        return proxy_route(target)

    monkeypatch.setattr(proxies, "proxy_route", counted)
    model = proxy("http://upstream.invalid", tmp_path).model
    assert await drain(await model.open_blob("library/x", Digest.parse(DIGEST))) == BLOB
    await model.close(5)
    auth = "Basic " + base64.b64encode(b"pu:pp").decode()
    assert state.seen == [("upstream.invalid", auth)] * 2  # the 401, then the GET that redirects
    assert state.log[-1] == f"cdn auth=Bearer {TOKEN}"  # the redirect went through the proxy too
    assert looked_up == ["http://upstream.invalid"]  # once, while the cache was being built


async def test_no_proxy_goes_direct(
    upstream: tuple[str, Faulty], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    url, state = upstream
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nobody listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    model = proxy(url, tmp_path).model
    assert await drain(await model.open_blob("library/x", Digest.parse(DIGEST))) == BLOB
    await model.close(5)
    assert [proxy_auth for _, proxy_auth in state.seen] == [None, None]


async def test_a_body_starts_with_a_small_buffer_and_widens(upstream: tuple[str, Faulty]) -> None:
    """Small at first, so the first byte is not held behind a large read; large once
    ``WIDEN_AFTER`` bytes (the whole 1 MiB BLOB) were received."""
    url, _ = upstream
    assert len(BLOB) == bodies.WIDEN_AFTER
    async with (
        aiohttp.ClientSession(read_bufsize=bodies.FIRST_READ_BUFFER) as session,
        session.get(f"{url}/cdn/blob") as response,
    ):
        assert response.content._high_water == 2 * bodies.FIRST_READ_BUFFER
        got = b"".join([c async for c in bodies.chunks(response, RuntimeError)])
        assert got == BLOB
        assert response.content._high_water == 2 * bodies.READ_BUFFER
        assert response.content._low_water == bodies.READ_BUFFER
    bodies.widen(object(), bodies.READ_BUFFER)  # type: ignore[arg-type]  # without them: nothing


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
async def test_wrong_bytes_or_a_break_fail_the_reader_and_cache_nothing(
    upstream: tuple[str, Faulty], tmp_path: Path, fault: str
) -> None:
    url, state = upstream
    state.fault = fault
    services = proxy(url, tmp_path)
    model = services.model
    source = await model.open_blob("library/x", Digest.parse(DIGEST))
    got = bytearray()
    with pytest.raises(FillFailed):
        async for chunk in source.read():
            got += chunk
    assert len(got) < len(BLOB)  # never the whole body
    await model.fills.close(5)
    assert await services.registry.blobs.size_global(Digest.parse(DIGEST)) is None
    state.fault = None
    assert await drain(await model.open_blob("library/x", Digest.parse(DIGEST))) == BLOB
    await model.close(5)


async def test_an_unknown_blob_and_an_unreachable_upstream(
    upstream: tuple[str, Faulty], tmp_path: Path
) -> None:
    from dockyard.errors import BlobUnknown, UpstreamUnavailable

    url, _ = upstream
    model = proxy(url, tmp_path).model
    with pytest.raises(BlobUnknown):
        await model.open_blob("library/x", Digest.parse("sha256:" + "1" * 64))
    await model.close(5)
    gone = proxy("http://127.0.0.1:9", tmp_path).model  # the discard port: nobody listens
    with pytest.raises(UpstreamUnavailable):
        await gone.open_blob("library/x", Digest.parse(DIGEST))
    await gone.close(5)


@pytest.mark.parametrize(
    ("to", "kept"),
    [
        ("http://up.example/cdn", True),  # same origin
        ("https://up.example/cdn", True),  # http to https, same host, default ports (as httpx)
        ("https://up.example:8443/cdn", False),
        ("http://cdn.example/blob", False),
        ("http://up.example:8080/cdn", False),
    ],
)
def test_which_redirects_keep_the_authorization(to: str, kept: bool) -> None:
    assert bodies._keeps_authorization(URL("http://up.example/v2/x"), URL(to)) is kept
    assert bodies._keeps_authorization(URL("https://up.example/v2/x"), URL("http://up.example/v2/x")) is False


async def test_the_blob_client_is_ready_before_the_first_fill(
    upstream: tuple[str, Faulty], tmp_path: Path
) -> None:
    url, state = upstream
    services = proxy(url, tmp_path)
    client = services.proxy.router.upstreams[0].bodies
    assert client._session is None
    services.proxy.start()
    await services.proxy._warming
    session = client._session
    assert session is not None and not session.closed
    assert state.log == []  # a head start only: nothing is asked of the upstream
    await services.proxy.close(0)
    assert session.closed
