"""An ASGI wrapper that writes this worker's unsaved pull times at shutdown (see hub.pulls)."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.services import Services

log = logging.getLogger("dockyard.hub")


class FlushPullsApp:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                try:
                    await self.services.pulls.close()
                except Exception:
                    log.exception("failed to save pull times at shutdown")
            return message

        await self.app(scope, receive_wrapper, send)
