"""``GET /health`` (readiness: storage and coordinator reachable?) and ``GET /`` (liveness: the
process answers), in front of the API.

They are separate so an orchestrator restarts a replica only when the process itself is stuck
(``/``), and takes it out of rotation without restarting it while its object store or PostgreSQL
is unreachable (``/health``): restarting would not bring either back.
"""

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

    async def _check(self) -> tuple[int, dict[str, str]]:
        body = {"status": "ok", "storage": "ok", "coordinator": "ok"}
        try:
            await self.services.driver.exists(paths.ROOT)
        except Exception as exc:
            log.error("storage health check failed", extra={"error": str(exc)})
            body["storage"] = "unreachable"
        try:
            await self.services.coordinator.now()
        except Exception as exc:
            log.error("coordinator health check failed", extra={"error": str(exc)})
            body["coordinator"] = "unreachable"
        if "unreachable" in body.values():
            body["status"] = "unavailable"
            return 503, body
        return 200, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (self.health_path, self.root_path):
            status, body = 200, {"status": "ok"}
            if scope["path"] == self.health_path:
                status, body = await self._check()
            payload = json.dumps(body).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})
            return
        await self.app(scope, receive, send)
