"""One upstream registry, as the pull-through cache asks it: manifests by HEAD and GET, blobs by a
streamed GET, through :class:`dockyard.client.RegistryAuth` (Basic or the Docker token flow).

Every failure becomes one of two answers the cache acts on: :class:`NotUpstream` (the upstream
says the content does not exist: 404) or :class:`UpstreamFailed` (it could not be reached, timed
out, answered 5xx or 429, or sent something broken), which the cache answers from what it holds
(stale-if-error) or, holding nothing, turns into an OCI error naming the upstream and its answer.
The rate-limit headers of each answer (``ratelimit-limit``, ``ratelimit-remaining``) are kept.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from yarl import URL

from dockyard.client import RegistryAuth
from dockyard.config import Upstream
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError
from dockyard.proxy import bodies

log = logging.getLogger("dockyard.proxy")

# Every manifest type a client may pull: the upstream picks; the cache stores its exact bytes.
ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.DOCKER_SCHEMA1_SIGNED]
)
MAX_MANIFEST = 4 * 1024 * 1024
Chunks = AsyncIterator[bytes]


class NotUpstream(Exception):
    """The upstream answered 404: the content does not exist there (a 401 or 403 is a failure:
    credentials that stopped working must not hide what is cached)."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class UpstreamFailed(Exception):
    """The upstream did not serve the request; ``answer`` is what happened, for people."""

    def __init__(self, answer: str, *, throttled: bool = False) -> None:
        super().__init__(answer)
        self.answer = answer
        self.throttled = throttled


@dataclass(frozen=True, slots=True)
class ManifestAnswer:
    digest: Digest
    media_type: str
    size: int
    body: bytes | None  # None for a HEAD


@dataclass(slots=True)
class RateLimit:
    """The upstream's last stated pull limit (Docker Hub: ``100;w=21600``) and what remains."""

    limit: str | None = None
    remaining: str | None = None
    seen_at: float | None = None


class UpstreamClient:
    """The HTTP client of one upstream; ``transport`` replaces the network (tests put a fault
    injector there), ``clock`` is the tokens' (epoch seconds)."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = upstream
        self.url = upstream.remoteurl
        creds = upstream.credentials
        self.auth = RegistryAuth(creds.username, creds.secret, clock=clock)
        self.ratelimit = RateLimit()
        self.clock = clock
        timeout = httpx.Timeout(upstream.timeout, connect=min(upstream.timeout, 10.0))
        self.client = httpx.AsyncClient(
            base_url=self.url,
            auth=self.auth,
            timeout=timeout,
            transport=transport,
            follow_redirects=True,  # blobs are often served from a CDN or an object store
        )
        # Blob bodies over aiohttp (``proxy.bodies``: the profiled hot loop), unless a test put
        # its own transport in: then everything goes through it.
        tls = self.url.startswith("https:")
        self.bodies = None
        if transport is None:
            self.bodies = bodies.BodyClient(self.auth, upstream.timeout, self._seen, tls=tls)
            self.bodies.routes.preload(URL(self.url))  # built before serving: no thread trip later

    def _record(self, response: httpx.Response) -> None:
        self._seen(response.headers)

    def _seen(self, headers: httpx.Headers) -> None:
        limit = headers.get("ratelimit-limit")
        remaining = headers.get("ratelimit-remaining")
        if limit is None and remaining is None:
            return
        self.ratelimit = RateLimit(limit, remaining, self.clock())
        if remaining is not None and remaining.split(";")[0].strip() in ("0", "1"):
            log.warning("upstream %s: pull limit nearly used up (%s of %s left)", self.url, remaining, limit)

    def _fail(self, response: httpx.Response, what: str) -> Exception:
        status = response.status_code
        answer = f"{what}: HTTP {status}"
        with contextlib.suppress(ValueError, KeyError, TypeError, IndexError, AttributeError):
            answer += f" {response.json()['errors'][0]['message']}"
        if status == 404:
            return NotUpstream(answer)
        return UpstreamFailed(answer, throttled=status == 429)

    async def _send(self, request: httpx.Request, what: str, *, stream: bool = False) -> httpx.Response:
        try:
            response = await self.client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"{what}: {type(exc).__name__} {exc}".strip()) from None
        self._record(response)
        if response.status_code >= 400:
            if stream:
                with contextlib.suppress(httpx.HTTPError):
                    await response.aread()
                await response.aclose()
            raise self._fail(response, what)
        return response

    async def manifest(self, repository: str, reference: str, *, head: bool) -> ManifestAnswer:
        """A manifest's digest and type (``head``) or its bytes, digest checked when asked by digest."""
        path = f"/v2/{repository}/manifests/{quote(reference, safe=':')}"
        what = f"{'HEAD' if head else 'GET'} {self.url}{path}"
        request = self.client.build_request("HEAD" if head else "GET", path, headers={"Accept": ACCEPT})
        response = await self._send(request, what)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if head:
            header = response.headers.get("docker-content-digest")
            try:
                digest = Digest.parse(header or "")
            except DigestError:
                raise UpstreamFailed(f"{what}: no usable Docker-Content-Digest") from None
            return ManifestAnswer(digest, media_type, int(response.headers.get("content-length") or 0), None)
        body = response.content
        if len(body) > MAX_MANIFEST:
            raise UpstreamFailed(f"{what}: a manifest of {len(body)} bytes, more than this registry accepts")
        algorithm = reference.split(":", 1)[0] if ":" in reference else "sha256"
        try:
            digest = Digest.of(body, algorithm)
        except (DigestError, ValueError):
            digest = Digest.of(body)
        if ":" in reference and str(digest) != reference:
            raise UpstreamFailed(f"{what}: the bytes have digest {digest}, not the one asked for")
        return ManifestAnswer(digest, media_type, len(body), body)

    async def tags(self, repository: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        """A page of the upstream's tags, and whether it says more remain (a ``Link`` header)."""
        path = f"/v2/{repository}/tags/list"
        query = {k: v for k, v in (("n", str(n) if n is not None else None), ("last", last)) if v}
        request = self.client.build_request("GET", path, params=query)
        response = await self._send(request, f"GET {self.url}{path}")
        try:
            tags = response.json().get("tags") or []
        except (ValueError, AttributeError):
            raise UpstreamFailed(f"GET {self.url}{path}: not a tag list") from None
        names = sorted(t for t in tags if isinstance(t, str))
        return names, "link" in response.headers

    async def blob_size(self, repository: str, digest: Digest) -> int:
        path = f"/v2/{repository}/blobs/{digest}"
        response = await self._send(self.client.build_request("HEAD", path), f"HEAD {self.url}{path}")
        return int(response.headers.get("content-length") or 0)

    @contextlib.asynccontextmanager
    async def blob(self, repository: str, digest: Digest) -> AsyncIterator[tuple[int | None, Chunks]]:
        """A blob as (size from Content-Length if stated, its chunks); a break or a timeout while
        reading raises :class:`UpstreamFailed`."""
        path = f"/v2/{repository}/blobs/{digest}"
        what = f"GET {self.url}{path}"
        if self.bodies is not None:
            async with self._fast_blob(path, what) as answer:
                yield answer
            return
        response = await self._send(self.client.build_request("GET", path), what, stream=True)
        try:
            size = _size(response.headers)

            async def chunks() -> AsyncIterator[bytes]:
                try:
                    # As received (no re-chunking: a copy and a loop per piece saved).
                    async for chunk in response.aiter_bytes():
                        yield chunk
                except httpx.HTTPError as exc:
                    raise UpstreamFailed(f"{what}: the body broke off ({type(exc).__name__})") from None

            yield size, chunks()
        finally:
            await response.aclose()

    @contextlib.asynccontextmanager
    async def _fast_blob(self, path: str, what: str) -> AsyncIterator[tuple[int | None, Chunks]]:
        assert self.bodies is not None
        try:
            answer, response = await self.bodies.get(self.client.build_request("GET", path))
        except bodies.BodyFailed as exc:
            raise UpstreamFailed(f"{what}: {exc}") from None
        try:
            if answer.status_code >= 400:
                raise self._fail(answer, what)
            size = _size(answer.headers)

            def broke(exc: Exception) -> Exception:
                return UpstreamFailed(f"{what}: the body broke off ({type(exc).__name__})")

            yield size, bodies.chunks(response, broke)
        finally:
            bodies.finish(response)

    async def warm(self) -> None:
        """Ready the blob client before the first fill needs it (``BodyClient.warm``)."""
        if self.bodies is not None:
            await self.bodies.warm(URL(self.url))

    async def close(self) -> None:
        await self.client.aclose()
        if self.bodies is not None:
            await self.bodies.close()


def _size(headers: httpx.Headers) -> int | None:
    """The body's size from Content-Length, unless it is encoded (then only its end tells)."""
    length = headers.get("content-length")
    encoded = headers.get("content-encoding", "identity") != "identity"
    return int(length) if length and length.isdigit() and not encoded else None
