"""BodyTimeoutApp: a body that stops arriving reads as a disconnect, marked as timed out."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from dockyard.api.bodytimeout import TIMED_OUT, BodyTimeoutApp

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _run(pieces: list[Message], stall: bool) -> tuple[list[Message], Scope]:
    seen: list[Message] = []
    scope: Scope = {"type": "http"}
    queue = list(pieces)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if stall:
            await asyncio.Event().wait()  # a client that never sends the rest
        return {"type": "http.disconnect"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    async def send(message: Message) -> None:
        pass

    await BodyTimeoutApp(app, 0.01)(scope, receive, send)
    return seen, scope


async def test_a_body_that_stops_arriving_reads_as_a_timed_out_disconnect() -> None:
    seen, scope = await _run([{"type": "http.request", "body": b"a", "more_body": True}], stall=True)
    assert seen == [{"type": "http.request", "body": b"a", "more_body": True}, {"type": "http.disconnect"}]
    assert scope[TIMED_OUT] is True


async def test_a_whole_body_passes_through_untouched() -> None:
    pieces: list[Message] = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"b", "more_body": False},
    ]
    seen, scope = await _run(list(pieces), stall=False)
    assert seen == pieces
    assert TIMED_OUT not in scope
