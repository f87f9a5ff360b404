"""In-process UI clients: the whole app (create_app's wrappers) over httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.config import parse_config
from dockyard.health import HealthApp
from dockyard.web.app import WebApp
from tests.servers.dockyard import deep_merge

UIFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_ui(tmp_path: Path) -> UIFactory:
    users = HtpasswdFile(tmp_path / "htpasswd")
    users.set_password("alice", "pw-alice", cost=4, create=True)
    users.set_password("bob", "pw-bob", cost=4, create=True)

    def factory(extra: dict[str, Any] | None = None, *, auth: bool = False) -> httpx.AsyncClient:
        tree: dict[str, Any] = {
            "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}}
        }
        if auth:
            tree["auth"] = {
                "htpasswd": {"path": str(tmp_path / "htpasswd")},
                "robots": {"path": str(tmp_path / "robots.json")},
                "access": {
                    "admins": ["alice"],
                    "rules": [
                        {"repositories": ["pub/**"], "actions": ["pull"], "anonymous": True},
                        {"repositories": ["**"], "actions": ["pull"], "users": ["bob"]},
                    ],
                },
            }
        services = create_services(parse_config(deep_merge(tree, extra or {})))
        app: Any = HealthApp(RegistryApp(services), services)
        if services.config.ui.enabled:
            app = WebApp(app, services)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")

    return factory
