"""The request an event happened in: its id, the client, and who it was, for the subscribers.

Events stay plain values of what changed; who asked and through which request is ambient to the
request, so the outermost HTTP wrapper (``api.observe``) puts a :class:`RequestInfo` in a context
variable for the request's task, the dispatcher fills in the route and the caller once it knows
them, and a subscriber that wants them (webhooks, the audit log) reads :func:`current_request`
while it is told of the event. Outside a request (the CLI, scheduled maintenance) there is none.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

# Ids a client may choose: what tracing systems and proxies send (UUIDs, hex, base64url, dotted
# spans), short enough for a log line, and nothing a log reader or a header could misread.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

_CURRENT: ContextVar[RequestInfo | None] = ContextVar("dockyard_request", default=None)


class _Ids:
    """Fresh ids shaped like random UUIDs: 60 random bits per process, then a counter.

    ``uuid.uuid4()`` reads the kernel's random source on every call (20 us on a loaded machine,
    more than the rest of a small request); ids need to be unique, not unguessable. A forked
    child draws its own random part."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        p = os.urandom(8).hex()
        # The random half and the first three digits of the counter (zero for the first 2**48
        # ids), already in a UUID's shape: an id is then one format of the counter (this runs
        # once per request).
        self.head = f"{p[:8]}-{p[8:12]}-4{p[13:16]}-a000-"
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.head}{next(self.counter):012x}"


_IDS = _Ids()


def new_id() -> str:
    """A fresh id shaped like a random UUID (:class:`_Ids`): requests', and events' too."""
    return _IDS.next()


@dataclass(slots=True)
class RequestInfo:
    """One request as the events' subscribers see it (distribution's ``request`` and ``actor``)."""

    id: str
    addr: str  # the client's address (host:port)
    host: str  # the Host header the client sent
    method: str
    useragent: str
    route: str = ""  # the route table's name, once matched ("" when no route matched)
    actor: str = ""  # the authenticated account, "" while anonymous or unknown
    # Writes the response waits for before its head is sent: a subscriber's durable record of
    # the request's change (the webhook queue), so an acknowledged change is never unrecorded.
    pending: list[asyncio.Future[None]] = field(default_factory=list)


def request_id(offered: str | None) -> str:
    """The client's ``X-Request-Id`` when it is sane, else a fresh one."""
    if offered is not None and _SANE_ID.fullmatch(offered):
        return offered
    return _IDS.next()


def current_request() -> RequestInfo | None:
    return _CURRENT.get()


def enter_request(info: RequestInfo) -> Token[RequestInfo | None]:
    """Make ``info`` the current request of this task; returns the token for :func:`leave_request`."""
    return _CURRENT.set(info)


def leave_request(token: Token[RequestInfo | None]) -> None:
    _CURRENT.reset(token)
