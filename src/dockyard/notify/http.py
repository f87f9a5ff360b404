"""Posting envelopes to the endpoints: the one HTTP client of both senders, over aiohttp.

Measured on loopback against ``bench.receiver`` (300 POSTs of an envelope of 32 events, after
20 to warm up): httpx's ``AsyncClient.post`` cost 810-850 us of the sender's CPU per request,
aiohttp's ``ClientSession.post`` 210-220 us. Under a stream of pulls every 32 events are one
POST, so that difference was most of what a webhook cost a busy worker. Redirects are not
followed (a 3xx is a failure).

Environment proxies (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``: ``dockyard.client.proxies``) and
``.netrc`` credentials are honoured as aiohttp's ``trust_env`` honours them, with the same helpers,
but looked up once per endpoint URL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp.helpers import basicauth_from_netrc, netrc_from_env
from yarl import URL

from dockyard.client.proxies import DIRECT, ProxyRoute, proxy_route
from dockyard.config import Endpoint
from dockyard.notify.cloudevent import BATCH_MEDIA_TYPE as CLOUDEVENT_BATCH
from dockyard.notify.cloudevent import MEDIA_TYPE as CLOUDEVENT
from dockyard.notify.cloudevent import cloudevent_batch_body, cloudevent_body
from dockyard.notify.envelope import MEDIA_TYPE, SIGNATURE_HEADER, body_of, sign


@dataclass(frozen=True, slots=True)
class Route:
    """How requests to one endpoint URL go: the environment's proxy for it, and ``.netrc``'s
    ``Authorization`` for its host, as a ready header value."""

    proxy: ProxyRoute = DIRECT
    authorization: str | None = None


def route_for(url: str) -> Route:
    """What ``trust_env`` would find for ``url`` (blocking: it reads ``.netrc``)."""
    target = URL(url)
    auth = None
    if target.host is not None and target.user is None:  # credentials in the URL win, as in aiohttp
        with contextlib.suppress(LookupError):
            auth = basicauth_from_netrc(netrc_from_env(), target.host)
    return Route(proxy_route(target), auth.encode() if auth is not None else None)


class WebhookClient:
    """A keep-alive session, opened on the first post (in the running loop), closed by
    :meth:`aclose`."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._routes: dict[str, Route] = {}

    async def post(self, endpoint: Endpoint, parts: Sequence[bytes]) -> str | None:
        """None when the endpoint took the events; else what went wrong (no secrets in it).
        ``parts``: the events' compact JSON in order, a part holding one or more joined by commas
        (a slice of a spool file: ``notify.spool.Batch``). In
        the CloudEvents format each event is its own request, in order; a failure part way
        retries the whole batch (at least once: a receiver deduplicates by the event id). In the
        batched CloudEvents format the envelope's events are one JSON array, one request."""
        if endpoint.format == "distribution":  # the events' bytes as queued
            return await self._send(endpoint, body_of(parts), MEDIA_TYPE)
        events = orjson.loads(b"[" + b",".join(parts) + b"]")
        if endpoint.format == "cloudevents-batch":
            return await self._send(endpoint, cloudevent_batch_body(events), CLOUDEVENT_BATCH)
        if endpoint.format == "cloudevents":
            for event in events:
                error = await self._send(endpoint, cloudevent_body(event), CLOUDEVENT)
                if error is not None:
                    return error
        return None

    async def _send(self, endpoint: Endpoint, content: bytes, media_type: str) -> str | None:
        route = self._routes.get(endpoint.url)
        if route is None:
            route = self._routes[endpoint.url] = await asyncio.to_thread(route_for, endpoint.url)
        headers = [(k, v) for k, values in endpoint.headers.items() for v in values]
        if route.authorization and not any(k.lower() == "authorization" for k, _ in headers):
            headers.append(("Authorization", route.authorization))  # .netrc's, as trust_env did
        if route.proxy.proxy_authorization:
            headers.append(("Proxy-Authorization", route.proxy.proxy_authorization))
        headers.append(("Content-Type", media_type))
        if endpoint.secret:
            headers.append((SIGNATURE_HEADER, sign(endpoint.secret, content)))
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                endpoint.url,
                data=content,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=endpoint.timeout),
                allow_redirects=False,
                proxy=route.proxy.proxy,
                proxy_headers=route.proxy.connect_headers,
            ) as answer:
                await answer.read()
                status = answer.status
        except TimeoutError:
            return f"no answer within {endpoint.timeout:g}s"
        except aiohttp.ClientConnectorError as exc:
            return f"cannot connect: {exc.os_error or exc}"[:300]
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
