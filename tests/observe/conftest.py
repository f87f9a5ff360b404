"""Observability tests: request ids, metrics, against the whole app built by ``create_app``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.app import build_app, create_services
from dockyard.config import parse_config
from dockyard.services import Services
from tests.servers.dockyard import deep_merge

AppFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_client(tmp_path: Path) -> AppFactory:
    """A client of the whole application (every wrapper ``create_app`` puts around the API)."""

    def factory(
        extra: dict[str, Any] | None = None, *, services: Services | None = None
    ) -> httpx.AsyncClient:
        if services is None:
            services = make_services(tmp_path, extra)
        app = build_app(services)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")

    return factory


def make_services(tmp_path: Path, extra: dict[str, Any] | None = None) -> Services:
    base = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}},
        "ui": {"enabled": False},
    }
    return create_services(parse_config(deep_merge(base, extra or {})))
