"""Per-request context handed to every handler, and the services built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from dockyard.auth.access import ANONYMOUS, AccessController, Identity
from dockyard.config import Config
from dockyard.storage.driver import StorageDriver
from dockyard.storage.registry import Registry


@dataclass(slots=True)
class Services:
    config: Config
    driver: StorageDriver
    registry: Registry
    access: AccessController
    # Per-process state of the Hub-compatible API and the web UI (hub.state.of builds it).
    hub: Any = None


@dataclass(slots=True)
class Context:
    request: Request
    services: Services
    params: dict[str, str]
    identity: Identity = ANONYMOUS
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def registry(self) -> Registry:
        return self.services.registry

    @property
    def name(self) -> str:
        return self.params["name"]

    def url(self, path: str) -> str:
        """A URL for a registry path (``/v2/...``) as the client should use it: prefix, host, scheme."""
        http = self.services.config.http
        full = (http.prefix.rstrip("/") + path) if http.prefix != "/" else path
        if http.relativeurls:
            return full
        if http.host:
            return http.host + full
        headers = self.request.headers
        scheme = headers.get("x-forwarded-proto", "").split(",")[0].strip() or self.request.scope["scheme"]
        host = headers.get("x-forwarded-host", "").split(",")[0].strip() or headers.get("host")
        if not host:
            return full
        return f"{scheme}://{host}{full}"
