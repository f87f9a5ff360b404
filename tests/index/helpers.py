"""Two app instances over one store and one database, as two replicas would be; the store's truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.config import parse_config
from dockyard.health import HealthApp
from dockyard.services import Services
from dockyard.storage import paths
from dockyard.storage.index import StoreContents, walk


@dataclass
class Instance:
    services: Services
    client: httpx.AsyncClient

    async def close(self) -> None:
        await self.client.aclose()
        await self.services.coordinator.close()


def instance(storage: dict[str, Any], dsn: str | None, **extra: Any) -> Instance:
    tree: dict[str, Any] = {"storage": storage, **extra}
    if dsn is not None:
        tree["database"] = {**tree.get("database", {}), "dsn": dsn}
    services = create_services(parse_config(tree))
    app = HealthApp(RegistryApp(services), services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")
    return Instance(services, client)


async def all_pages(client: httpx.AsyncClient, url: str, key: str, n: int) -> list[str]:
    """Follow ``Link`` headers from ``url?n=<n>`` to the end; every name seen, in order."""
    names: list[str] = []
    next_url: str | None = f"{url}?n={n}"
    while next_url is not None:
        r = await client.get(next_url)
        assert r.status_code == 200, r.text
        names += r.json()[key]
        link = r.headers.get("Link")
        next_url = link[1 : link.index(">")] if link else None
    return names


async def listed(client: httpx.AsyncClient, n: int = 2) -> StoreContents:
    """What the API lists, every page."""
    repos = await all_pages(client, "/v2/_catalog", "repositories", n)
    tags = {(name, t) for name in repos for t in await all_pages(client, f"/v2/{name}/tags/list", "tags", n)}
    return StoreContents(set(repos), tags)


async def tag_behind_the_back(services: Services, name: str, tag: str, digest: str) -> None:
    """Write a tag into the store as another tool would (no index write)."""
    link = digest.encode()
    await services.driver.put_content(paths.tag_current_link(name, tag), link)


async def truth(services: Services) -> StoreContents:
    return await walk(services.driver)
