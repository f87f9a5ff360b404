"""The outermost HTTP wrapper: a request id for every request, and the request metrics.

``X-Request-Id``: a client's (or a proxy's) id is kept when it is sane (``events.request``
says what that is), else one is made; either way it is answered in the response's header, written
in the access log line, and carried to the events' subscribers (webhooks, audit) through
``events.request.current_request``. Outermost, so the UI, the health check and the token
server answer with it too. Before a response's head goes out, the durable records its request's
changes are waiting for (the webhook queue's writes) are awaited.

With metrics (``http.debug.prometheus.enabled``), each request is counted by its route's name
(from the route table, set by the dispatcher; ``ui``, ``health``, ``token`` or ``other`` for the
surfaces around the API), method and status, timed, and its body bytes in and out summed; a
request that is sending blob data to an upload route counts as an upload in progress while it does.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.events.request import RequestInfo, enter_request, leave_request, request_id

if TYPE_CHECKING:  # prometheus-client loads only when metrics are on
    from dockyard.metrics.collectors import Metrics

HEADER = b"x-request-id"
_UPLOAD_ROUTES = frozenset({"upload-start", "upload"})


async def settle(info: RequestInfo) -> None:
    """Wait for the durable records of this request's changes (see ``RequestInfo.pending``).
    One that failed is logged where it failed; the change itself is committed, so the client
    still hears of its success."""
    pending, info.pending = info.pending, []
    await asyncio.gather(*pending, return_exceptions=True)


def _surface(path: str, route: str) -> str:
    """The route label: the route table's name, else which surface answered."""
    if route:
        return route
    if path.startswith("/health"):
        return "health"
    if path.startswith("/token"):
        return "token"
    if path == "/" or path.startswith("/ui/"):
        return "ui"
    return "other"


def _describe(scope: Scope) -> RequestInfo:
    headers = dict(scope["headers"])  # one C-level pass; a repeated header: its last value
    offered = headers.get(HEADER)
    client = scope.get("client")
    return RequestInfo(
        request_id(None if offered is None else offered.decode("latin-1")),
        f"{client[0]}:{client[1]}" if client else "",
        headers.get(b"host", b"").decode("latin-1"),
        scope["method"],
        headers.get(b"user-agent", b"").decode("latin-1"),
    )


class ObserveApp:
    def __init__(self, app: ASGIApp, metrics: Metrics | None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.metrics is not None:
                await self.app(scope, self._flushing_at_shutdown(receive, self.metrics), send)
            else:
                await self.app(scope, receive, send)
            return
        info = _describe(scope)
        header = (HEADER, info.id.encode())
        token = enter_request(info)
        try:
            if self.metrics is None:

                async def send_with_id(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        message["headers"] = [*message.get("headers", ()), header]
                        if info.pending:
                            await settle(info)
                    await send(message)

                await self.app(scope, receive, send_with_id)
            else:
                await self._measured(scope, receive, send, info, header, self.metrics)
        finally:
            leave_request(token)

    @staticmethod
    def _flushing_at_shutdown(receive: Receive, metrics: Metrics) -> Receive:
        """The worker's last tallies into the shared files before it stops (they flush a second
        after a request otherwise)."""

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                metrics.flush()
            return message

        return lifespan_receive

    async def _measured(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        info: RequestInfo,
        header: tuple[bytes, bytes],
        metrics: Metrics,
    ) -> None:
        started = time.perf_counter()
        status = 0
        received = sent = 0
        uploading = False

        async def counting_receive() -> Message:
            nonlocal received, uploading
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                received += len(body)
                if body and not uploading and info.route in _UPLOAD_ROUTES:
                    uploading = True
                    metrics.uploads.inc()
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.start":
                if info.pending:
                    await settle(info)
                status = message["status"]
                headers = [*message.get("headers", ()), header]
                message["headers"] = headers
                for key, value in headers:
                    if key == b"content-length" and value.isdigit():  # a file sent by path: all we see
                        sent = -int(value)
            elif kind == "http.response.body":
                sent = (0 if sent < 0 else sent) + len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if uploading:
                metrics.uploads.dec()
            metrics.request(
                _surface(scope["path"], info.route),
                scope["method"],
                status or 499,
                time.perf_counter() - started,
                received,
                abs(sent),
            )
