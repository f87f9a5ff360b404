"""Which proxy the environment names for an outgoing request, looked up once per origin.

``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (and ``.netrc`` credentials for the proxy's host),
as aiohttp's ``trust_env`` reads them, with its own helpers. ``trust_env`` reads them again for
every request, in two trips to a worker thread (``.netrc`` is a file). Both aiohttp clients of the
registry (webhook deliveries, the pull-through cache's blob bodies) ask here instead: the
environment does not change while the registry runs. Measured: the lookups held 3.8 % of a busy
worker's samples under a stream of webhook deliveries (py-spy), and the two thread trips came
before every cold blob fetch's first byte.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """How requests to one origin go, as ready header values. A proxy's credentials go on the
    request itself through a plain proxy (``proxy_authorization``), on the CONNECT for an
    ``https`` target (``connect_headers``): aiohttp deprecates its ``proxy_auth`` argument, and
    its ``proxy_headers`` reach only a CONNECT."""

    proxy: URL | None = None
    proxy_authorization: str | None = None
    connect_headers: dict[str, str] | None = None


DIRECT = ProxyRoute()


def proxy_route(url: URL) -> ProxyRoute:
    """What ``trust_env`` would find for ``url`` (blocking: it may read ``.netrc``)."""
    try:
        proxy, proxy_auth = get_env_proxy_for_url(url)
    except LookupError:  # no proxy for its scheme, or NO_PROXY names its host
        return DIRECT
    if proxy_auth is None:
        return ProxyRoute(proxy)
    if url.scheme == "https":
        return ProxyRoute(proxy, None, {"Proxy-Authorization": proxy_auth.encode()})
    return ProxyRoute(proxy, proxy_auth.encode())


class ProxyRoutes:
    """The routes of the origins one client has asked for, each looked up once, in a thread."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str | None, int | None], ProxyRoute] = {}

    def preload(self, url: URL) -> None:
        """Look ``url``'s origin up now (blocking): for a client built before serving starts."""
        self._known.setdefault(_origin(url), proxy_route(url))

    async def route(self, url: URL) -> ProxyRoute:
        key = _origin(url)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = await asyncio.to_thread(proxy_route, url)
        return found


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return (url.scheme, url.host, url.port)
