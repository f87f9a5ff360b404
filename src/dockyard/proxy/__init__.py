"""The pull-through cache: repositories bound to upstream registries (``proxy`` in the
configuration), served through ``ProxyRegistry``, a layer over the registry model.

``build_proxy`` is the one hook ``app.create_services`` calls; with no ``proxy`` section it
returns None and the registry is served as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx

from dockyard.config import Config, Upstream
from dockyard.proxy.inflight import Fills, Spool
from dockyard.proxy.registry import ProxyRegistry
from dockyard.proxy.routing import Router
from dockyard.proxy.upstream import UpstreamClient
from dockyard.storage.registry import Registry

Transports = Callable[[Upstream], httpx.AsyncBaseTransport | None]


def spool_directory(config: Config) -> str:
    """``proxy.spooldirectory``, else one under the temporary directory per store (two registries
    on one machine never share a spool, and the workers of one always do)."""
    if config.proxy.spooldirectory:
        return config.proxy.spooldirectory
    name, params = config.storage.driver()
    store: Any = [name, params]
    digest = hashlib.sha256(json.dumps(store, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"dockyard-proxy-{digest}")


def build_proxy(
    config: Config,
    registry: Registry,
    *,
    clock: Callable[[], float] = time.monotonic,
    transports: Transports | None = None,
) -> ProxyRegistry | None:
    """The pull-through layer over ``registry``, or None without a ``proxy`` section;
    ``transports`` gives an upstream's HTTP transport (tests: a fault injector; None: the network)."""
    if not config.proxy.enabled:
        return None
    clients = [
        UpstreamClient(u, transport=transports(u) if transports else None, clock=clock)
        for u in config.proxy.all_upstreams()
    ]
    fills = Fills(registry, Spool(spool_directory(config)))
    return ProxyRegistry(registry, Router(clients), fills, clock=clock)


__all__ = ["ProxyRegistry", "Transports", "build_proxy"]
