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
    scope: Scope = {"type": "http", "method": "PATCH"}
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


async def test_a_cancel_from_elsewhere_is_not_a_timeout() -> None:
    """A hang-up cancels the request's task: that stays a cancellation, not a 408."""
    scope: Scope = {"type": "http", "method": "PATCH"}
    waiting = asyncio.Event()

    async def receive() -> Message:
        waiting.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    async def send(message: Message) -> None:
        pass

    task = asyncio.ensure_future(BodyTimeoutApp(app, 30.0)(scope, receive, send))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert TIMED_OUT not in scope


async def test_only_the_stalled_request_of_several_times_out() -> None:
    """One sweeper serves every request of the app: a stalled body times out, while another
    request whose pieces keep coming (each sooner than the bound) reads its whole body."""
    seen: dict[str, list[Message]] = {"slow": [], "stalled": []}

    def receiver(name: str) -> Receive:
        pieces: list[Message] = [{"type": "http.request", "body": b"x", "more_body": True}] * 5
        pieces.append({"type": "http.request", "body": b"", "more_body": False})

        async def receive() -> Message:
            if name == "stalled" and len(seen[name]) == 1:
                await asyncio.Event().wait()
            await asyncio.sleep(0.005)
            return pieces.pop(0)

        return receive

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen[scope["name"]].append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    async def send(message: Message) -> None:
        pass

    guard = BodyTimeoutApp(app, 0.5)
    slow: Scope = {"type": "http", "method": "PATCH", "name": "slow"}
    stalled: Scope = {"type": "http", "method": "PATCH", "name": "stalled"}
    await asyncio.gather(guard(slow, receiver("slow"), send), guard(stalled, receiver("stalled"), send))
    assert len(seen["slow"]) == 6 and TIMED_OUT not in slow
    assert seen["stalled"][-1] == {"type": "http.disconnect"} and stalled[TIMED_OUT] is True


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_requests_without_a_body_get_the_servers_receive_untouched(method: str) -> None:
    """Nothing reads a GET's or a HEAD's body: their receive is not wrapped (no cost per request)."""
    handed: list[Receive] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        handed.append(receive)

    async def send(message: Message) -> None:
        pass

    await BodyTimeoutApp(app, 0.01)({"type": "http", "method": method}, receive, send)
    await BodyTimeoutApp(app, 0.01)({"type": "http", "method": "PUT"}, receive, send)
    assert handed[0] is receive and handed[1] is not receive
