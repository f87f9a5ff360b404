"""The events' subscriber that queues pushed images for scanning.

A pushed manifest (image or index) is queued once per push, durable before the client hears
"done": the queue write joins the request's ``pending`` writes, which ``api.observe`` awaits
before the response head, so an acknowledged push is never left unscanned by a crash. A manifest
with a subject (a signature, an SBOM: the scanner's own included) is not queued: referrers are
not images, and a generated SBOM must never cause a scan of itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from dockyard.events import Event, ManifestPushed
from dockyard.events.request import current_request
from dockyard.oci import mediatypes as mt
from dockyard.scan.queue import QueuedScan, ScanQueue

log = logging.getLogger("dockyard.scan")


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("queuing a scan failed", extra={"error": str(task.exception())})


class ScanSubscriber:
    def __init__(self, queue: ScanQueue, clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.clock = clock
        self._last: tuple[str, str, str] | None = None  # a push with several tags: one event a tag
        self._writing: set[asyncio.Future[None]] = set()  # queue writes not finished yet

    def emit(self, event: Event) -> None:
        if not isinstance(event, ManifestPushed) or event.subject is not None:
            return
        if event.media_type not in mt.MANIFEST_TYPES:
            return
        request = current_request()
        key = (request.id if request is not None else "", event.repository, event.digest)
        if request is not None and key == self._last:
            return
        self._last = key
        waiter = asyncio.ensure_future(
            self.queue.add(QueuedScan(event.repository, event.digest, "push", self.clock()))
        )
        waiter.add_done_callback(_retrieve)  # logged here: the response only waits for it
        self._writing.add(waiter)
        waiter.add_done_callback(self._writing.discard)
        if request is not None:
            request.pending.append(waiter)

    async def settle(self) -> None:
        """Wait for the queue writes started so far: a push outside a request (a proxy's fill, a
        test) has nobody else awaiting its write, and a drain must see it."""
        if self._writing:
            await asyncio.gather(*tuple(self._writing), return_exceptions=True)
