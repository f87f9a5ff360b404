"""The pull-through cache: repositories bound to upstream registries (``proxy`` in the
configuration), served through ``ProxyRegistry``, a layer over the registry model.

``build_proxy`` is the one hook ``app.create_services`` calls; with no ``proxy`` section it
returns None and the registry is served as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from dockyard.config import Config, Upstream
from dockyard.proxy.cache import CacheManager, LastPulled
from dockyard.proxy.inflight import Fills, Spool
from dockyard.proxy.registry import ProxyRegistry
from dockyard.proxy.routing import Router
from dockyard.proxy.sync import Syncer
from dockyard.proxy.upstream import UpstreamClient
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.proxy")
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
    last_pulled: LastPulled | None = None,
    inline_metadata: bool = True,
) -> ProxyRegistry | None:
    """The pull-through layer over ``registry``, or None without a ``proxy`` section;
    ``transports`` gives an upstream's HTTP transport (tests: a fault injector; None: the network);
    ``last_pulled`` tells the cache's eviction when content was last pulled (the pull log);
    ``inline_metadata`` is the filesystem driver's decision (false: fills keep a spool copy)."""
    if not config.proxy.enabled:
        return None
    clients = [
        UpstreamClient(u, transport=transports(u) if transports else None, clock=clock)
        for u in config.proxy.all_upstreams()
    ]
    fills = Fills(registry, Spool(spool_directory(config)), upload_files=inline_metadata)
    router = Router(clients)

    async def never(name: str, key: str) -> float | None:
        return None

    cache = CacheManager(
        registry,
        router,
        last_pulled or never,
        maxsize=config.proxy.cache.maxsize,
        grace=config.storage.maintenance.gc.grace,
    )
    proxy = ProxyRegistry(registry, router, fills, clock=clock, cache=cache)
    proxy.syncer = Syncer(proxy, list(config.proxy.sync))
    return proxy


@dataclass(frozen=True, slots=True)
class Task:
    """A job for the maintenance scheduler (``app`` makes it a ``maintenance.Job``: one process
    of one replica runs each, under its lease)."""

    name: str
    interval: float
    first_delay: float
    run: Callable[[], Awaitable[None]]


def tasks(proxy: ProxyRegistry, config: Config) -> list[Task]:
    """The cache's scheduled work: expiry and the size limit, and one task per ``sync`` rule."""
    settings = config.proxy.cache
    out = []

    async def maintain() -> None:
        report = await proxy.cache.maintain()
        if report.evicted:
            log.info(
                "cache maintenance evicted %d images, freed %d bytes",
                len(report.evicted),
                report.bytes_freed,
            )

    first = random.uniform(settings.interval / 10, settings.interval)  # noqa: S311 - not a secret
    out.append(Task("proxy-cache", settings.interval, first, maintain))
    syncer = proxy.syncer
    assert syncer is not None
    for index, rule in enumerate(syncer.rules):

        async def sync(index: int = index) -> None:
            await syncer.run(index)

        # A new rule runs soon after start (an air-gapped site wants it before the link goes).
        delay = random.uniform(1.0, min(60.0, rule.interval))  # noqa: S311 - not a secret
        out.append(Task(f"proxy-sync-{index}", rule.interval, delay, sync))
    return out


__all__ = ["CacheManager", "LastPulled", "ProxyRegistry", "Task", "Transports", "build_proxy", "tasks"]
