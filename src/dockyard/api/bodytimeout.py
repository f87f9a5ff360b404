"""A request body that stops arriving is given up on after ``http.timeouts.body`` seconds.

granian waits for body bytes as long as the connection is open, so a client that declares more
than it sends (a Content-Length lie, a chunked body cut short) or trickles an upload would hold a
worker's request forever. This wrapper bounds each wait for the next piece of the body; once the
body has ended, ``receive`` is passed through untouched (responses listen on it for hang-ups).
A timeout reads as a disconnect to the application, which answers 408 (``TIMED_OUT`` in the
scope tells it apart from a hang-up or a body whose framing granian refused).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TIMED_OUT = "dockyard.body_timed_out"


class BodyTimeoutApp:
    def __init__(self, app: ASGIApp, idle: float) -> None:
        self.app = app
        self.idle = idle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.idle <= 0:
            await self.app(scope, receive, send)
            return
        ended = False

        async def timed_receive() -> Message:
            nonlocal ended
            if ended:
                return await receive()
            try:
                # ``asyncio.timeout`` bounds the wait in this task; ``wait_for`` (Python 3.11)
                # would wrap every receive in a task of its own, which costs more than the rest
                # of a small upload's body handling.
                async with asyncio.timeout(self.idle):
                    message = await receive()
            except TimeoutError:
                ended = True
                scope[TIMED_OUT] = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                ended = True
            return message

        await self.app(scope, timed_receive, send)
