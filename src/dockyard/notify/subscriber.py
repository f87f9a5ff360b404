"""The events' subscriber that queues notifications, durable before the client hears "done".

A change's event is added to the spool, and its write's future to the request's
``RequestInfo.pending``; the outermost HTTP wrapper waits for those before it sends the response
head (``api.observe``). So a client that saw its push acknowledged has its event on disk, and a
crash after that point cannot lose it. Pull events do not hold the response: they are deferred
(``notify.queue.Flushes``) and go with the queue's next write, at the latest
``notifications.pullwindow`` (100 ms by default) after the pull; a crash in that window can lose
them. A pull's event is described by that write too (``EventQueue.add_deferred``), with the
time of the pull.
"""

from __future__ import annotations

import socket
import uuid
from functools import partial
from typing import Any

from dockyard.config import Config, split_addr
from dockyard.events import Event, ManifestPulled
from dockyard.events.request import RequestInfo, current_request
from dockyard.notify.envelope import Timestamps, describe, pull
from dockyard.notify.queue import EventQueue, retrieve


class NotifySubscriber:
    def __init__(self, spool: EventQueue, config: Config) -> None:
        self.spool = spool
        _, port = split_addr(config.http.addr)
        # distribution's source: this registry instance.
        self.source = {"addr": f"{socket.gethostname()}:{port}", "instanceID": str(uuid.uuid4())}
        self.base_url = config.http.host or ""
        self.timestamps = Timestamps()

    def emit(self, event: Event) -> None:
        request = current_request()
        if type(event) is ManifestPulled:  # described by the write that takes it, in one loop
            self.spool.add_deferred(
                event.repository, partial(self._pull, event, request, self.timestamps.clock())
            )
            return
        described = describe(event, request, self.source, self._base_url(request), self.timestamps)
        if described is None:
            return
        # Order is kept per repository; a collection names none and is queued under "".
        waiter = self.spool.add(described["target"].get("repository", ""), described)
        if request is not None:
            request.pending.append(waiter)
        else:  # nobody awaits it; a failure is logged by the queue already
            waiter.add_done_callback(retrieve)

    def _base_url(self, request: RequestInfo | None) -> str:
        return self.base_url or (f"http://{request.host}" if request is not None and request.host else "")

    def _pull(self, event: ManifestPulled, request: RequestInfo | None, ns: int) -> dict[str, Any]:
        return pull(event, request, self.source, self._base_url(request), self.timestamps.at(ns))
