"""``GET /health`` (storage reachable?) and ``GET /`` (load-balancer probe), in front of the API."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.services import Services
from dockyard.storage import paths

log = logging.getLogger("dockyard.server")


class HealthApp:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        prefix = services.config.http.prefix.rstrip("/")
        self.health_path = prefix + "/health"
        self.root_path = prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (self.health_path, self.root_path):
            status, body = 200, {"status": "ok"}
            if scope["path"] == self.health_path:
                try:
                    await self.services.driver.exists(paths.ROOT)
                    body["storage"] = "ok"
                except Exception as exc:
                    log.error("storage health check failed", extra={"error": str(exc)})
                    status, body = 503, {"status": "unavailable", "storage": "unreachable"}
            payload = json.dumps(body).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})
            return
        await self.app(scope, receive, send)
