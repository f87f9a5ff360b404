"""Per-request context handed to every API handler (the registry API and the Hub API)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from dockyard.auth.access import ANONYMOUS, Identity
from dockyard.origin import request_origin
from dockyard.services import Services
from dockyard.storage.model import RegistryModel
from dockyard.storage.registry import Registry


@dataclass(slots=True)
class Context:
    request: Request
    services: Services
    params: dict[str, str]
    identity: Identity = ANONYMOUS

    @property
    def model(self) -> RegistryModel:
        """What the registry API's handlers call (``storage.model``)."""
        return self.services.model

    @property
    def registry(self) -> Registry:
        """The concrete registry, for the Hub API and the admin API's maintenance operations."""
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
        origin = request_origin(self.request.headers, self.request.scope["scheme"], http.host)
        return f"{origin}{full}" if origin.host else full
