"""Two replicas of one registry in this process over one store and one PostgreSQL (started as a
plain process): each its own services and whole application (``build_app``), as two machines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.app import build_app, create_services
from dockyard.config import parse_config
from dockyard.services import Services
from tests.observe.receiver import Receiver
from tests.servers.dockyard import deep_merge, free_port


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    yield r
    r.stop()


def replica(tmp_path: Path, dsn: str, port: int, extra: dict[str, Any] | None = None) -> Services:
    hook = {"name": "ci", "url": f"http://127.0.0.1:{port}/hook", "backoff": "1s", "maxbackoff": "4s"}
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "store"), "fsync": False}},
        "ui": {"enabled": False},
        "database": {"dsn": dsn},
        "audit": {"enabled": True},
        "notifications": {"endpoints": [hook]},
    }
    return create_services(parse_config(deep_merge(tree, extra or {})))


def client_of(services: Services) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(services))
    return httpx.AsyncClient(transport=transport, base_url="http://registry.test")
