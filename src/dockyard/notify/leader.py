"""What both webhook senders share: one process of all sends at a time (the holder of the
coordinator's ``notifications`` lease), in a background loop that steps while it leads.

The spool's :class:`~dockyard.notify.deliver.Deliverer` and PostgreSQL's
:class:`~dockyard.notify.outbox.OutboxDeliverer` differ only in where events wait and how
progress is kept; leading, the loop, the HTTP client and stopping are this one class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from dockyard.config import Endpoint
from dockyard.coord.base import Coordinator
from dockyard.notify.http import WebhookClient

log = logging.getLogger("dockyard.notify")
LEASE = "notifications"
LEASE_SECONDS = 30.0  # the default of ``notifications.lease``
POLL_SECONDS = 1.0  # how often an idle sender looks for new events
# How soon it looks again after a step that had events: under a stream of pulls the backlog
# stays about a window's worth instead of growing for a second towards ``maxpending``.
ACTIVE_POLL_SECONDS = 0.1

Sleep = Callable[[float], Awaitable[None]]


class LeasedSender:
    """Sends while it holds the lease, renewing it a third of its life early."""

    def __init__(
        self,
        leases: Coordinator,
        endpoints: list[Endpoint],
        *,
        sleep: Sleep,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.leases = leases
        self.endpoints = endpoints
        # How long a sender that died (SIGKILL, a lost machine) keeps the others from sending.
        self.lease_seconds = lease_seconds
        self.sleep = sleep
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.client = WebhookClient()
        self._leading_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self.handled = 0  # events sent, passed over or dropped so far (the steps count them)

    async def step(self) -> bool:
        """Send what is due; whether there was more to do at once."""
        raise NotImplementedError

    def lost_lead(self) -> None:
        """Another process sends now: forget what this one kept in memory."""

    def start(self) -> None:
        if self.endpoints and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.leases.release_lease(LEASE, self.holder)
        await self.client.aclose()

    async def _run(self) -> None:
        while True:
            before = self.handled
            try:
                busy = await self.step() if await self._lead() else False
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification delivery failed; retrying")
                busy = False
            if not busy:
                await self.sleep(ACTIVE_POLL_SECONDS if self.handled > before else POLL_SECONDS)

    async def _lead(self) -> bool:
        """Whether this process sends now."""
        now = time.monotonic()
        if now < self._leading_until:
            return True
        if await self.leases.acquire_lease(LEASE, self.holder, self.lease_seconds):
            self._leading_until = now + self.lease_seconds / 3
            return True
        self._leading_until = 0.0
        self.lost_lead()
        return False
