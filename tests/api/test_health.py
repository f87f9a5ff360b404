"""``GET /health`` is readiness (storage and coordinator), ``GET /`` liveness: an unreachable
store or coordinator turns the first to 503 and names which, and leaves the second at 200."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.config import parse_config
from dockyard.health import HealthApp

pytestmark = pytest.mark.anyio


class _Down:
    """Stands in for a store or coordinator whose network is gone: every call fails."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError(f"{name}: connection refused")

        return fail


def _client(*, storage_down: bool = False, coordinator_down: bool = False) -> httpx.AsyncClient:
    services = create_services(parse_config({"storage": {"inmemory": {}}}))
    if storage_down:
        services.driver = _Down(services.driver)  # type: ignore[assignment]
    if coordinator_down:
        services.coordinator = _Down(services.coordinator)  # type: ignore[assignment]
    app = HealthApp(RegistryApp(services), services)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")


async def test_ready_names_both_checks() -> None:
    async with _client() as client:
        r = await client.get("/health")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "storage": "ok", "coordinator": "ok"}


async def test_storage_down_is_not_ready_but_alive() -> None:
    async with _client(storage_down=True) as client:
        r = await client.get("/health")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "storage": "unreachable", "coordinator": "ok"}
        assert (await client.get("/")).status_code == 200


async def test_coordinator_down_is_not_ready() -> None:
    async with _client(coordinator_down=True) as client:
        r = await client.head("/health")
        assert r.status_code == 503 and r.content == b""
        r = await client.get("/health")
        assert r.json() == {"status": "unavailable", "storage": "ok", "coordinator": "unreachable"}
