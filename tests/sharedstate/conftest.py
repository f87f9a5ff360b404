"""Two replicas of one registry in this process: each its own services and app over one shared
store, with a database (PostgreSQL started as a plain process) or without one. Each replica has
its own machine directory (robots file, key directory), as two machines would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services, wrap_token_server
from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.config import parse_config
from dockyard.health import HealthApp
from dockyard.services import Services
from dockyard.web.app import WebApp
from tests.servers.dockyard import deep_merge

SERVICE = "reg.test"
USERS = {"alice": "pw-alice", "bob": "pw-bob"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """Monotonic seconds the tests advance (the controllers re-read keys once a second)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Replica:
    services: Services
    client: httpx.AsyncClient
    clock: Clock
    machine: Path


ReplicaFactory = Callable[..., Any]


@pytest.fixture
def shared_htpasswd(tmp_path: Path) -> Path:
    """One user file for both (an operator deploys the same file to every machine)."""
    users = HtpasswdFile(tmp_path / "htpasswd")
    for user, password in USERS.items():
        users.set_password(user, password, cost=4, create=True)
    return tmp_path / "htpasswd"


def replica_config(
    tmp_path: Path, machine: str, dsn: str | None, extra: dict[str, Any] | None, *, auth: bool = True
) -> Any:
    home = tmp_path / machine
    tree: dict[str, Any] = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "store"), "fsync": False}},
        "auth": {
            "htpasswd": {"realm": "dockyard", "path": str(tmp_path / "htpasswd")},
            "robots": {"path": str(home / "robots.json")},
            "throttle": {"attempts": 3, "window": "30s"},
            "access": {
                "admins": ["alice"],
                "rules": [{"repositories": ["**"], "actions": ["*"], "users": ["bob"]}],
            },
            "token": {
                "service": SERVICE,
                "issuer": "tests",
                "server": {"enabled": True, "keys": str(home / "keys")},
            },
        },
    }
    if not auth:
        del tree["auth"]
    if dsn:
        tree["database"] = {"dsn": dsn}
    return parse_config(deep_merge(tree, extra or {}))


@pytest.fixture
def make_replica(tmp_path: Path, shared_htpasswd: Path) -> ReplicaFactory:
    @asynccontextmanager
    async def factory(
        machine: str, dsn: str | None, extra: dict[str, Any] | None = None, *, auth: bool = True
    ) -> AsyncIterator[Replica]:
        config = replica_config(tmp_path, machine, dsn, extra, auth=auth)
        clock = Clock()
        services = create_services(config, clock=clock)
        app: Any = HealthApp(wrap_token_server(RegistryApp(services), services.access, "/"), services)
        app = WebApp(app, services)
        transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{SERVICE}") as client:
            try:
                yield Replica(services, client, clock, tmp_path / machine)
            finally:
                await services.coordinator.close()

    return factory


async def token(client: httpx.AsyncClient, auth: tuple[str, str] | None, *scopes: str) -> httpx.Response:
    return await client.get("/token", params={"service": SERVICE, "scope": list(scopes)}, auth=auth)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)
