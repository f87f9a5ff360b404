"""In-process auth tests: the full ASGI stack (health, token server, API) over httpx, memory storage."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services, wrap_token_server
from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.config import parse_config
from dockyard.health import HealthApp
from tests.auth.live import ACCESS, USERS
from tests.servers.dockyard import deep_merge

SERVICE = "reg.test"
ISSUER = "dockyard-tests"
AuthApp = Callable[..., httpx.AsyncClient]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    users = HtpasswdFile(tmp_path / "htpasswd")
    for user, password in USERS.items():
        users.set_password(user, password, cost=4, create=True)
    return tmp_path


def auth_config(auth_dir: Path, mode: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "htpasswd": {"realm": "dockyard", "path": str(auth_dir / "htpasswd")},
        "access": ACCESS,
        "robots": {"path": str(auth_dir / "robots.json")},
        "throttle": {"attempts": 3, "window": "30s"},
    }
    if mode == "token":
        auth["token"] = {
            "service": SERVICE,
            "issuer": ISSUER,
            "server": {"enabled": True, "keys": str(auth_dir / "keys")},
        }
    return deep_merge({"storage": {"inmemory": {}}, "auth": auth}, extra or {})


@pytest.fixture
def make_auth_app(auth_dir: Path) -> AuthApp:
    def factory(
        mode: str = "token", extra: dict[str, Any] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> httpx.AsyncClient:
        config = parse_config(auth_config(auth_dir, mode, extra))
        services = create_services(config, clock=clock)
        app = HealthApp(wrap_token_server(RegistryApp(services), services.access, "/"), services)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{SERVICE}")

    return factory


async def get_token(client: httpx.AsyncClient, user: str | None, *scopes: str) -> str:
    auth = (user, USERS[user]) if user else None
    r = await client.get("/token", params={"service": SERVICE, "scope": list(scopes)}, auth=auth)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
