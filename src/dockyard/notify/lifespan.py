"""Starting and stopping the sender with the worker, around the application's own lifespan."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.notify.queue import EventQueue
from dockyard.notify.service import Sender


class NotifyApp:
    def __init__(self, app: ASGIApp, spool: EventQueue, deliverer: Sender) -> None:
        self.app = app
        self.spool = spool
        self.deliverer = deliverer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.deliverer.start()
            elif message["type"] == "lifespan.shutdown":
                await self.spool.drain()  # queued pulls written before the worker goes
                await self.deliverer.stop()
            return message

        await self.app(scope, lifespan_receive, send)
