"""In-process API tests: the ASGI app over httpx.ASGITransport, on the memory and filesystem drivers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.config import parse_config
from dockyard.health import HealthApp
from tests.servers.dockyard import deep_merge

AppFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["inmemory", "filesystem"])
def storage_section(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "inmemory":
        return {"inmemory": {}}
    return {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}}


@pytest.fixture
def make_client(storage_section: dict[str, Any]) -> AppFactory:
    """Build a client for an app with extra configuration merged in."""

    def factory(
        extra: dict[str, Any] | None = None, *, wrap: Callable[[Any], Any] | None = None
    ) -> httpx.AsyncClient:
        tree = deep_merge({"storage": storage_section}, extra or {})
        services = create_services(parse_config(tree), wrap_driver=wrap)
        app = HealthApp(RegistryApp(services), services)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")

    return factory


@pytest.fixture
async def client(make_client: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c
