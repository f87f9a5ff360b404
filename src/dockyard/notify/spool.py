"""The durable queue of events: files in the store, written through the storage driver.

Each write is one file, ``<first event's time ns>-<pid>-<n>-<count>.json`` under
``_dockyard/notifications/spool/``, holding the events queued since the previous write, each
with the time (ns) and process it was queued in. Writes are group-committed: while one is in
flight, new events gather for the next, so under load many requests share one fsync and an idle
registry writes each event at once. The file name says when and how many, so the sender knows
the queue's depth from a listing.

A file is written whole or not at all (the driver's ``put_content`` is atomic, and durable with
the filesystem driver's ``fsync``), never changed, and removed once every endpoint has it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.errors import PathNotFound
from dockyard.notify.queue import Flushes, settle
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

log = logging.getLogger("dockyard.notify")
_NAME = re.compile(r"(\d{20})-(\d+)-(\d+)-(\d+)\.jsonl?")


@dataclass(frozen=True, slots=True)
class SpoolFile:
    name: str
    first: int  # ns
    count: int


@dataclass(frozen=True, slots=True)
class Record:
    """One queued event: ``key`` orders it (queue time ns, process, position), ``repository``
    names the queue order is kept within, ``event`` is distribution's JSON."""

    key: tuple[int, int, int]
    repository: str
    event: dict[str, Any]


def parse_name(name: str) -> SpoolFile | None:
    found = _NAME.fullmatch(name)
    if found is None:
        return None
    return SpoolFile(name, int(found.group(1)), int(found.group(4)))


class Spool(Flushes):
    def __init__(
        self,
        driver: CheckedDriver,
        *,
        clock: Callable[[], int] = time.time_ns,
        directory: Callable[[int], str] = lambda _: paths.NOTIFICATION_SPOOL,
        lines: bool = False,
    ) -> None:
        """``directory`` names where a file goes from its first record's time (ns): one place
        for the webhook queue, a folder per day for the audit log."""
        self.driver = driver
        self.clock = clock
        self.directory = directory
        self.lines = lines  # JSON lines (``.jsonl``, one record a line) instead of one array
        self._pending: list[dict[str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._inflight: list[asyncio.Future[None]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._files = itertools.count()
        self._events = itertools.count()

    def add(self, repository: str, event: dict[str, Any]) -> asyncio.Future[None]:
        """Queue ``event``; the future is done when it is durable (or failed to be)."""
        loop = asyncio.get_running_loop()
        self._pending.append(
            {"t": self.clock(), "p": os.getpid(), "s": next(self._events), "r": repository, "e": event}
        )
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if self._writer is None:
            self._writer = loop.create_task(self._write_all())
        return waiter

    async def _write_all(self) -> None:
        try:
            while self._pending:
                batch, waiters = self._pending, self._waiters
                self._pending, self._waiters, self._inflight = [], [], waiters
                suffix = "jsonl" if self.lines else "json"
                name = f"{batch[0]['t']:020d}-{os.getpid()}-{next(self._files)}-{len(batch)}.{suffix}"
                content = (
                    "".join(json.dumps(r) + "\n" for r in batch) if self.lines else json.dumps(batch)
                ).encode()
                try:
                    await self.driver.put_content(f"{self.directory(batch[0]['t'])}/{name}", content)
                except Exception as exc:
                    log.exception("failed to queue events for notification", extra={"count": len(batch)})
                    settle(waiters, exc)
                    continue
                settle(waiters)
        finally:
            self._writer, self._inflight = None, None

    async def drain(self) -> None:
        """Wait until everything queued so far is written (at shutdown)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def files(self, directory: str = paths.NOTIFICATION_SPOOL) -> list[SpoolFile]:
        """The files in ``directory``, oldest first."""
        try:
            names = await self.driver.list_dir(directory)
        except PathNotFound:
            return []
        found = [f for n in names if (f := parse_name(n)) is not None]
        return sorted(found, key=lambda f: (f.first, f.name))

    async def read(self, name: str, directory: str = paths.NOTIFICATION_SPOOL) -> list[Record]:
        content = await self.driver.get_content(f"{directory}/{name}")
        raw = (
            [json.loads(line) for line in content.splitlines() if line]
            if name.endswith(".jsonl")
            else json.loads(content)
        )
        return [Record((int(r["t"]), int(r["p"]), int(r["s"])), str(r["r"]), r["e"]) for r in raw]

    async def remove(self, names: list[str]) -> None:
        if names:
            await self.driver.delete_many([f"{paths.NOTIFICATION_SPOOL}/{n}" for n in names])
