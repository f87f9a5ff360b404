"""A request body that stops arriving is given up on after ``http.timeouts.body`` seconds.

granian waits for body bytes as long as the connection is open, so a client that declares more
than it sends (a Content-Length lie, a chunked body cut short) or trickles an upload would hold a
worker's request forever. This wrapper bounds each wait for the next piece of the body; once the
body has ended, ``receive`` is passed through untouched (responses listen on it for hang-ups).
A timeout reads as a disconnect to the application, which answers 408 (``TIMED_OUT`` in the
scope tells it apart from a hang-up or a body whose framing granian refused).

One sweeper per worker, not a timer per wait: each wait for a piece of the body is registered in
a set with its deadline, and one loop callback, armed only while some wait is registered, cancels
the tasks whose deadline passed, every ``min(idle, 1 s) / 2``. A timer per wait
(``asyncio.timeout``) made and cancelled a libuv timer for every body read, which in a profile of
small pushes was about 6 % of a worker's CPU; a wait here costs a set insert and removal. A
timeout fires between ``idle`` and ``idle`` plus half a tick late, which a bound meant in tens of
seconds does not notice. Cancellation follows ``asyncio.timeout``'s rules: only a cancel this
sweeper made becomes a timeout, any other (the server's, at a hang-up) goes on as it came.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TIMED_OUT = "dockyard.body_timed_out"
# Methods whose bodies nothing reads: their receive goes to the application untouched (a response
# only listens on it for a hang-up), so the most frequent requests pay nothing here.
_NO_BODY = frozenset({"GET", "HEAD"})


class _Wait:
    """One task waiting for the next piece of a body, until ``deadline`` (the loop's clock)."""

    __slots__ = ("deadline", "fired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.fired = False


class BodyTimeoutApp:
    def __init__(self, app: ASGIApp, idle: float) -> None:
        self.app = app
        self.idle = idle
        self._tick = min(idle, 1.0) / 2
        self._waits: set[_Wait] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def _watch(self, wait: _Wait, loop: asyncio.AbstractEventLoop) -> None:
        self._waits.add(wait)
        if self._sweeper is None or self._loop is not loop:
            # (A sweeper armed on another loop, as in tests that run one app on several, is dead.)
            self._loop = loop
            self._sweeper = loop.call_at(loop.time() + self._tick, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        loop = self._loop
        if loop is None or not self._waits:
            return
        now = loop.time()
        for wait in self._waits:
            if not wait.fired and wait.deadline <= now:
                wait.fired = True
                wait.task.cancel()
        self._sweeper = loop.call_at(now + self._tick, self._sweep)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.idle <= 0 or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        ended = False

        async def timed_receive() -> Message:
            nonlocal ended
            if ended:
                return await receive()
            task = asyncio.current_task()
            if task is None:  # pragma: no cover - an ASGI server always runs requests in tasks
                return await receive()
            loop = asyncio.get_running_loop()
            cancelling = task.cancelling()
            wait = _Wait(task, loop.time() + self.idle)
            self._watch(wait, loop)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if wait.fired and task.uncancel() <= cancelling:
                    ended = True
                    scope[TIMED_OUT] = True
                    return {"type": "http.disconnect"}
                raise
            finally:
                self._waits.discard(wait)
            if wait.fired:  # the cancel came as the piece did and was absorbed: take the piece
                task.uncancel()
            if message["type"] != "http.request" or not message.get("more_body", False):
                ended = True
            return message

        await self.app(scope, timed_receive, send)
