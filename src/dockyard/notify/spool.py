"""The durable queue of events: files in the store, written through the storage driver.

Each write is one file, ``<first event's time ns>-<pid>-<n>-<count>.events`` under
``_dockyard/notifications/spool/``, holding the events queued since the previous write, each
with the time (ns) and process it was queued in. Writes are group-committed: while one is in
flight, new events gather for the next, so under load many requests share one fsync and an idle
registry writes each event at once (pulls' events wait up to a window: ``notify.queue``). The
file name says when and how many, so the sender knows the queue's depth from a listing.

A line of an ``.events`` file is one event: a JSON array ``[time ns, pid, n, repository,
action, target media type or null]``, a tab, and the event's JSON as it goes into an envelope
(compact). JSON never holds a raw tab or newline, so the sender splits a line without decoding
the event, picks what an endpoint wants from the header, and joins the events' bytes into the
envelope: an event is encoded once, when it is queued. Files of the earlier formats (one JSON
array, ``.json``) are still read. The audit log keeps JSON lines (``.jsonl``) through this class.

The lines are encoded and the headers decoded with orjson: per event 0.35 us against the
standard library's 5.7 us to encode, 0.2 us against 1.1 us to decode a header (msgspec, the other
candidate, measured 0.55 and 0.2 us). For ASCII it writes the same bytes as ``json.dumps`` with
compact separators; other text goes as UTF-8 instead of ``\\u`` escapes, the same JSON.

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

import orjson

from dockyard.errors import PathNotFound
from dockyard.notify.queue import Flushes, settle
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

log = logging.getLogger("dockyard.notify")
_NAME = re.compile(r"(\d{20})-(\d+)-(\d+)-(\d+)\.(?:jsonl?|events)")


@dataclass(frozen=True, slots=True)
class SpoolFile:
    name: str
    first: int  # ns
    count: int


class Record:
    """One queued event: ``key`` orders it (queue time ns, process, position), ``repository``
    names the queue order is kept within, ``action`` and ``media_type`` are what an endpoint's
    filters look at; ``event`` is distribution's JSON, ``raw`` its compact encoding, each made
    from the other when first asked for."""

    __slots__ = ("_event", "_raw", "action", "key", "media_type", "repository")

    def __init__(
        self,
        key: tuple[int, int, int],
        repository: str,
        action: str,
        media_type: str | None,
        *,
        event: dict[str, Any] | None = None,
        raw: bytes | None = None,
    ) -> None:
        self.key = key
        self.repository = repository
        self.action = action
        self.media_type = media_type
        self._event = event
        self._raw = raw

    @classmethod
    def of(cls, key: tuple[int, int, int], repository: str, event: dict[str, Any]) -> Record:
        target = event.get("target") or {}  # an audit record has none
        return cls(key, repository, str(event.get("action", "")), target.get("mediaType"), event=event)

    @property
    def event(self) -> dict[str, Any]:
        if self._event is None:
            assert self._raw is not None
            self._event = orjson.loads(self._raw)
        return self._event

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self._event)
        return self._raw


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
        window: float = 0.0,
    ) -> None:
        """``directory`` names where a file goes from its first record's time (ns): one place
        for the webhook queue, a folder per day for the audit log. ``window``: how long a
        deferred record (a pull's event) may wait for a write (``notify.queue.Flushes``)."""
        self.driver = driver
        self.clock = clock
        self.directory = directory
        self.lines = lines  # JSON lines (``.jsonl``, one record a line) instead of one array
        self._init_flushes(window)
        self._files = itertools.count()
        self._events = itertools.count()

    def add(self, repository: str, event: dict[str, Any], *, defer: bool = False) -> asyncio.Future[None]:
        """Queue ``event``; the future is done when it is durable (or failed to be)."""
        # (time ns, position, repository, event); the process id is the writer's, added then.
        return self._queue((self.clock(), next(self._events), repository, event), defer)

    async def _write(self, batch: list[Any], waiters: list[asyncio.Future[None]]) -> None:
        suffix = "jsonl" if self.lines else "events"
        pid, first = os.getpid(), batch[0][0]
        name = f"{first:020d}-{pid}-{next(self._files)}-{len(batch)}.{suffix}"
        if self.lines:
            content = "".join([_line(pid, *record) for record in batch]).encode()
        else:
            content = b"".join([_event_line(pid, *record) for record in batch])
        try:
            await self.driver.put_content(f"{self.directory(first)}/{name}", content)
        except Exception as exc:
            log.exception("failed to queue events for notification", extra={"count": len(batch)})
            settle(waiters, exc)
            return
        settle(waiters)

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
        if name.endswith(".events"):
            return [_parse_event_line(line) for line in content.split(b"\n") if line]
        raw = (
            [json.loads(line) for line in content.splitlines() if line]
            if name.endswith(".jsonl")
            else json.loads(content)
        )
        return [Record.of((int(r["t"]), int(r["p"]), int(r["s"])), str(r["r"]), r["e"]) for r in raw]

    async def remove(self, names: list[str]) -> None:
        if names:
            await self.driver.delete_many([f"{paths.NOTIFICATION_SPOOL}/{n}" for n in names])


def _line(pid: int, t: int, s: int, repository: str, event: dict[str, Any]) -> str:
    return json.dumps({"t": t, "p": pid, "s": s, "r": repository, "e": event}) + "\n"


def _event_line(pid: int, t: int, s: int, repository: str, event: dict[str, Any]) -> bytes:
    head = orjson.dumps([t, pid, s, repository, event["action"], event["target"].get("mediaType")])
    return head + b"\t" + orjson.dumps(event) + b"\n"


def _parse_event_line(line: bytes) -> Record:
    head, _, raw = line.partition(b"\t")
    t, p, s, repository, action, media_type = orjson.loads(head)
    return Record((t, p, s), repository, action, media_type, raw=raw)
