"""In-process hostile-input tests: the whole app as create_app wires it (UI, token server, Hub),
over httpx.ASGITransport, in the three auth modes the attack run used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from dockyard.api.app import RegistryApp
from dockyard.api.hub.flush import FlushPullsApp
from dockyard.app import create_services, wrap_token_server
from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.config import parse_config
from dockyard.health import HealthApp
from dockyard.web.app import WebApp
from tests.servers.dockyard import deep_merge

AppFactory = Callable[..., ASGIApp]
ClientFactory = Callable[..., httpx.AsyncClient]
BASE = "http://registry.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def build_app(tree: dict[str, Any], wrap: Callable[[Any], Any] | None = None) -> ASGIApp:
    """create_app without the process-wide logging setup (``wrap``: around the driver)."""
    services = create_services(parse_config(tree), wrap_driver=wrap)
    api = wrap_token_server(RegistryApp(services), services.access, services.config.http.prefix)
    return FlushPullsApp(WebApp(HealthApp(api, services), services), services)


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    users = HtpasswdFile(tmp_path / "htpasswd")
    users.set_password("alice", "pw-alice", cost=4, create=True)

    def factory(
        mode: str = "none", extra: dict[str, Any] | None = None, wrap: Callable[[Any], Any] | None = None
    ) -> ASGIApp:
        tree: dict[str, Any] = {
            "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}}
        }
        if mode == "htpasswd":
            tree["auth"] = {"htpasswd": {"path": str(tmp_path / "htpasswd")}}
        elif mode == "token":
            tree["auth"] = {
                "htpasswd": {"path": str(tmp_path / "htpasswd")},
                "token": {
                    "issuer": "dockyard",
                    "service": "dockyard",
                    "server": {"enabled": True, "keys": str(tmp_path / "keys")},
                },
            }
        return build_app(deep_merge(tree, extra or {}), wrap)

    return factory


def client_for(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@pytest.fixture
def make_client(make_app: AppFactory) -> ClientFactory:
    def factory(
        mode: str = "none", extra: dict[str, Any] | None = None, wrap: Callable[[Any], Any] | None = None
    ) -> httpx.AsyncClient:
        return client_for(make_app(mode, extra, wrap))

    return factory
