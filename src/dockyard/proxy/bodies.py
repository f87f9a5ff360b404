"""Blob bodies from an upstream over aiohttp: the cold fill's hot loop.

Profiled on a cold 300 MiB pull, receiving the body through httpx (anyio streams, h11, a cancel
scope per 64 KiB read) took two thirds of the filling worker's time holding the GIL; aiohttp's
C parser reads the same bytes for about a fifth of the CPU (200 MiB from distribution on
loopback: 0.09-0.11 s against 0.43-0.57 s). Only blob GETs go this way: manifests, HEADs and tag
lists stay on the httpx client, and so does everything when a test injects an httpx transport.

The request is the one the httpx client would send (its default headers, so the upstream sees
one client) and is authenticated by the same :class:`dockyard.client.RegistryAuth`, whose flow
is driven here (cached tokens per scope, the Docker token flow, Basic). Redirects are followed
(a CDN or an object store), dropping ``Authorization`` on a change of origin as httpx does. The
environment's proxies apply as for httpx, per hop (``dockyard.client.proxies``); ``.netrc`` does
not (httpx ignores it: credentials are the upstream's ``username`` and ``password``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
import httpx
from yarl import URL

from dockyard.client import RegistryAuth
from dockyard.client.auth import reads_answer
from dockyard.client.proxies import ProxyRoutes

# How much of an upstream body aiohttp gathers before the fill reads it. Large is cheaper per byte:
# fewer, larger chunks (a cold 300 MiB pull and 16 pulls of it at once took 1.33x and 2.20x
# distribution's time at 1 MiB, 1.14x and 1.80x at 64 KiB; ``python -m bench.proxy``, 3 rounds).
# But the loop (uvloop) reads everything a socket holds, up to twice this, in one turn, and the
# client waiting for the first byte needs several turns after the upstream answers (the fill
# hands it the blob, its response starts, it is woken by the first chunk): at 1 MiB each turn
# read up to 2 MiB, and the first byte left 0.3-10 ms (mostly 3-10) after the first chunk had
# arrived; at 64 KiB, 0.3-1.7 ms. So a body starts at FIRST_READ_BUFFER and widens to READ_BUFFER
# after WIDEN_AFTER.
FIRST_READ_BUFFER = 64 << 10
READ_BUFFER = 1 << 20
WIDEN_AFTER = 1 << 20
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10  # as aiohttp and httpx


class BodyFailed(Exception):
    """The request failed before an answer (connection, timeout, TLS)."""


class BodyClient:
    """``timeout`` bounds connecting and each read; ``record`` sees every answer's headers (the
    rate-limit counters)."""

    def __init__(
        self,
        auth: RegistryAuth,
        timeout: float,
        record: Callable[[httpx.Headers], None],
        *,
        tls: bool,
    ) -> None:
        self.auth = auth
        self.tls = tls  # an https upstream: httpx's trust store (loading it costs; else aiohttp's)
        self.timeout = aiohttp.ClientTimeout(total=None, connect=min(timeout, 10.0), sock_read=timeout)
        self.record = record
        self.routes = ProxyRoutes()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # made on the running loop, when first used
            connector = aiohttp.TCPConnector(ssl=httpx.create_ssl_context() if self.tls else True)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, read_bufsize=FIRST_READ_BUFFER
            )
        return self._session

    async def _send(self, request: httpx.Request) -> aiohttp.ClientResponse:
        """``request``, its redirects followed, each hop through the proxy the environment names
        for its origin (``dockyard.client.proxies``). ``Authorization`` is dropped once a hop
        leaves the request's origin, except from http to https on the same host, as httpx does."""
        first = url = URL(str(request.url), encoded=True)
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
        try:
            for _ in range(MAX_REDIRECTS + 1):
                route = await self.routes.route(url)
                sent = headers
                if route.proxy_authorization is not None:
                    sent = [*headers, ("Proxy-Authorization", route.proxy_authorization)]
                response = await self._client().request(
                    request.method,
                    url,
                    headers=sent,
                    allow_redirects=False,
                    proxy=route.proxy,
                    proxy_headers=route.connect_headers,
                )
                location = response.headers.get("Location")
                if response.status not in REDIRECTS or location is None:
                    return response
                response.release()
                url = url.join(URL(location))
                if not _keeps_authorization(first, url):
                    headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise BodyFailed(f"{type(exc).__name__} {exc}".strip()) from None
        raise BodyFailed(f"more than {MAX_REDIRECTS} redirects")

    async def get(self, request: httpx.Request) -> tuple[httpx.Response, aiohttp.ClientResponse]:
        """The answer to ``request`` once authenticated, as httpx sees answers (status, headers,
        and the body of an error), and the aiohttp response whose body is still to read (the
        caller closes it)."""
        flow = self.auth.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = await self._send(outgoing)
            content = b""
            try:
                if reads_answer(outgoing) or response.status >= 400:
                    content = await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                response.close()
                raise BodyFailed(f"{type(exc).__name__} {exc}".strip()) from None
            headers = httpx.Headers(list(response.headers.items()))
            self.record(headers)
            answer = httpx.Response(response.status, headers=headers, content=content, request=outgoing)
            try:
                outgoing = flow.send(answer)
            except StopIteration:
                return answer, response
            response.release()

    async def warm(self, url: URL) -> None:
        """Pay at start what a process's first fetch would pay before its request goes out: the
        session, and the loop's resolver. uvloop looks up every new connection's address in its
        thread pool, which the first lookup starts (and which imports the IDNA codec first): in a
        fresh process the first connection to a loopback upstream took 1.6-1.9 ms, against
        0.8-0.9 ms after this (aiohttp on uvloop against distribution, 3 processes each)."""
        self._client()
        if url.host is not None:
            with contextlib.suppress(OSError):  # an upstream that does not resolve yet says so later
                await asyncio.get_running_loop().getaddrinfo(url.host, url.port)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def chunks(
    response: aiohttp.ClientResponse, broke: Callable[[Exception], Exception]
) -> AsyncIterator[bytes]:
    """The body as it arrives; ``broke`` turns a break or a timeout into the caller's error."""
    received = 0
    try:
        async for chunk in response.content.iter_any():
            if received < WIDEN_AFTER <= received + len(chunk):
                widen(response.content, READ_BUFFER)
            received += len(chunk)
            yield chunk
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise broke(exc) from None


def widen(content: aiohttp.StreamReader, size: int) -> None:
    """Let ``content`` gather ``size`` bytes (up to twice that before it pauses the socket), as
    ``read_bufsize=size`` would have at the start. aiohttp has no public way to change it on a
    response; its ``StreamReader`` has kept these two attributes since 3.0. Should they go, the
    body keeps its first buffer: slower, still correct."""
    marks = (getattr(content, "_low_water", None), getattr(content, "_high_water", None))
    if all(isinstance(mark, int) for mark in marks):
        content._low_water = size
        content._high_water = 2 * size


def finish(response: aiohttp.ClientResponse) -> None:
    """Give the connection back when the body was read to its end, else close it."""
    with contextlib.suppress(Exception):
        if response.content.at_eof():
            response.release()
        else:
            response.close()


def _keeps_authorization(first: URL, url: URL) -> bool:
    if url.origin() == first.origin():
        return True
    upgraded = first.scheme == "http" and url.scheme == "https" and first.is_default_port()
    return upgraded and url.host == first.host and url.is_default_port()
