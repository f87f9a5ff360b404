"""Where events go: a one-method protocol, a sink that drops them, and one that fans out."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from dockyard.events.types import Event

log = logging.getLogger("dockyard.events")


class EventSink(Protocol):
    def emit(self, event: Event) -> None:
        """Take one event. Called on the event loop in the request that caused it, after the
        change is committed: it must not block or wait on I/O (queue the work instead)."""


class NullSink:
    """No subscribers (the CLI's offline commands, tests of the stores alone)."""

    def emit(self, event: Event) -> None:
        return None


class Fanout:
    """Every event to every subscriber, in order.

    A subscriber that raises is logged and skipped: the change is committed already, so a
    failing listener must neither turn the client's success into an error nor starve the
    subscribers after it.
    """

    def __init__(self, subscribers: Iterable[EventSink]) -> None:
        self.subscribers = tuple(subscribers)

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber.emit(event)
            except Exception:
                log.exception("an event subscriber failed", extra={"event": type(event).__name__})
