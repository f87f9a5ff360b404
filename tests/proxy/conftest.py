"""In-process pull-through cache tests: a proxying dockyard whose upstreams are other dockyard apps
(over httpx.ASGITransport), reached through :class:`Upstream`, a transport that records every
request (the upstream's access log) and injects the failures a network has: down, 5xx, 429,
corrupted or cut-off bodies, and a gate that holds a blob's body until the test lets it go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services, wrap_token_server
from dockyard.config import Upstream as UpstreamConfig
from dockyard.config import parse_config
from dockyard.health import HealthApp
from dockyard.services import Services
from tests.servers.dockyard import deep_merge


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """Monotonic seconds the test steps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _Body(httpx.AsyncByteStream):
    def __init__(self, data: bytes, upstream: Upstream) -> None:
        self.data = data
        self.upstream = upstream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        data, up = self.data, self.upstream
        if up.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        half = max(len(data) // 2, 1)
        yield data[:half]
        if up.gate is not None:
            await up.gate.wait()
        if up.cut:
            raise httpx.ReadError("connection closed mid-body by the test")
        if data[half:]:
            yield data[half:]


@dataclass
class Upstream(httpx.AsyncBaseTransport):
    """An upstream registry app behind a recording, fault-injecting transport."""

    app: Any
    services: Services
    log: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False
    status: int | None = None  # answer every request with this status
    corrupt: bool = False
    cut: bool = False
    gate: asyncio.Event | None = None
    headers: dict[str, str] = field(default_factory=dict)  # added to every answer

    def __post_init__(self) -> None:
        self.inner = httpx.ASGITransport(app=self.app)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://up.test")

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p in self.log if m == method and fragment in p)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused (upstream stopped by the test)")
        self.log.append((request.method, request.url.path))
        if self.status is not None:
            return httpx.Response(self.status, json={"errors": [{"code": "X", "message": "injected"}]})
        response = await self.inner.handle_async_request(request)
        response.headers.update(self.headers)
        if "/blobs/" in request.url.path and request.method == "GET" and response.status_code == 200:
            data = await response.aread()
            return httpx.Response(200, headers=response.headers, stream=_Body(data, self))
        return response


def upstream_app(config: dict[str, Any]) -> tuple[Any, Services]:
    services = create_services(parse_config(config))
    app = HealthApp(wrap_token_server(RegistryApp(services), services.access, "/"), services)
    return app, services


@pytest.fixture
def make_upstream() -> Callable[..., Upstream]:
    def factory(extra: dict[str, Any] | None = None) -> Upstream:
        app, services = upstream_app(deep_merge({"storage": {"inmemory": {}}}, extra or {}))
        return Upstream(app, services)

    return factory


@dataclass
class Proxy:
    client: httpx.AsyncClient
    services: Services
    clock: Clock


@pytest.fixture
def make_proxy(tmp_path: Path) -> Callable[..., Proxy]:
    """A proxying dockyard; ``upstreams`` maps prefixes to (Upstream, extra upstream config)."""

    def factory(
        upstreams: dict[str, tuple[Upstream, dict[str, Any]]],
        extra: dict[str, Any] | None = None,
        storage: dict[str, Any] | None = None,
    ) -> Proxy:
        clock = Clock()
        entries = [
            {"prefix": prefix, "remoteurl": f"http://{prefix.replace('/', '-')}.up.test", **cfg}
            for prefix, (_, cfg) in upstreams.items()
        ]
        by_prefix = {prefix: up for prefix, (up, _) in upstreams.items()}
        tree = deep_merge(
            {
                "storage": storage or {"inmemory": {}},
                "proxy": {"upstreams": entries, "spooldirectory": str(tmp_path / "spool")},
            },
            extra or {},
        )

        def transports(u: UpstreamConfig) -> httpx.AsyncBaseTransport:
            return by_prefix[u.prefix]

        services = create_services(parse_config(tree), clock=clock, upstream_transports=transports)
        # Revalidation times are the coordinator's (shared by workers): the test steps that clock.
        services.registry.coordinator.clock = clock  # type: ignore[attr-defined]
        app = HealthApp(RegistryApp(services), services)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy.test")
        return Proxy(client, services, clock)

    return factory
