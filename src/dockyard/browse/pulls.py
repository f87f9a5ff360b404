"""When each tag and manifest was last pulled, and how often each repository and tag was,
recorded without slowing pulls down.

A manifest ``GET`` (not ``HEAD``) costs one dict assignment in the worker that served it. Every
``FLUSH_SECONDS`` while there are new pulls, and at shutdown, the worker merges its pulls into
``_dockyard/last-pulled.json`` under a lock (keeping the later time per key). The file is derived
state: deleting it loses only the pull times. Readers see the file (re-read when it changes) plus
their own worker's pulls not yet flushed. Pull counts go the same way into
``_dockyard/pull-counts.json`` (``<repository>`` and ``<repository>:<tag>`` → pulls), each flush
adding the worker's increments; a worker killed before its flush loses its last increments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from dockyard.coord.base import Coordinator
from dockyard.errors import PathNotFound
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

log = logging.getLogger("dockyard.hub")
FLUSH_SECONDS = 10.0
RELOAD_SECONDS = 1.0
Key = str  # "<repository>@<digest>" or "<repository>:<tag>"


def digest_key(name: str, digest: str) -> Key:
    return f"{name}@{digest}"


def tag_key(name: str, tag: str) -> Key:
    return f"{name}:{tag}"


class PullLog:
    def __init__(
        self,
        driver: CheckedDriver,
        coordinator: Coordinator,
        flush_seconds: float = FLUSH_SECONDS,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock  # epoch seconds; tests step it (the cache's expiry reads these times)
        self.driver = driver
        self.coordinator = coordinator
        self.flush_seconds = flush_seconds
        self.read_only = read_only  # a read-only registry writes nothing: pulls stay in memory
        self._pending: dict[Key, float] = {}
        self._stored: dict[Key, float] = {}
        self._stored_mtime: float | None = None
        self._checked = 0.0
        self._flush_task: asyncio.Task[None] | None = None
        self._counting: dict[Key, int] = {}
        self._counts: dict[Key, int] = {}
        self._counts_mtime: float | None = None

    def record(self, name: str, digest: str, tag: str | None) -> None:
        """Called on every manifest GET: O(1), no I/O."""
        now = self.clock()
        self._pending[digest_key(name, digest)] = now
        self._counting[name] = self._counting.get(name, 0) + 1
        if tag is not None:
            self._pending[tag_key(name, tag)] = now
            key = tag_key(name, tag)
            self._counting[key] = self._counting.get(key, 0) + 1
        if self._flush_task is None and not self.read_only:
            with contextlib.suppress(RuntimeError):  # no running loop: flushed at shutdown
                self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()
        except Exception:
            log.exception("failed to record pull times")
        finally:
            self._flush_task = None

    async def flush(self) -> None:
        """Merge this worker's pulls into the shared file."""
        if not self._pending or self.read_only:
            return
        pending, self._pending = self._pending, {}
        counting, self._counting = self._counting, {}
        try:
            async with self.coordinator.lock("last-pulled"):
                merged = await self._read()
                for key, when in pending.items():
                    if when > merged.get(key, 0.0):
                        merged[key] = when
                await self.driver.put_content(paths.LAST_PULLED, json.dumps(merged).encode())
                pending = {}
                counts = await self._read_counts()
                for key, n in counting.items():
                    counts[key] = counts.get(key, 0) + n
                await self.driver.put_content(paths.PULL_COUNTS, json.dumps(counts).encode())
        except BaseException:
            for key, when in pending.items():  # keep them for the next try
                self._pending[key] = max(when, self._pending.get(key, 0.0))
            for key, n in counting.items():  # not written: counted again next time
                self._counting[key] = self._counting.get(key, 0) + n
            raise
        self._stored = merged
        self._counts = counts
        self._checked = 0.0

    async def close(self) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flush_task
            self._flush_task = None
        await self.flush()

    async def _read(self) -> dict[Key, float]:
        try:
            raw = await self.driver.get_content(paths.LAST_PULLED)
            data: Any = json.loads(raw)
        except (PathNotFound, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}

    async def _read_counts(self) -> dict[Key, int]:
        try:
            data: Any = json.loads(await self.driver.get_content(paths.PULL_COUNTS))
        except (PathNotFound, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: int(v) for k, v in data.items() if isinstance(v, int) and v >= 0}

    async def refresh(self) -> None:
        """Re-read the shared file if it changed (at most once per ``RELOAD_SECONDS``)."""
        now = time.monotonic()
        if now - self._checked < RELOAD_SECONDS:
            return
        self._checked = now
        try:
            mtime = (await self.driver.stat(paths.LAST_PULLED)).mtime
        except PathNotFound:
            self._stored, self._stored_mtime = {}, None
            return
        if mtime != self._stored_mtime:
            self._stored, self._stored_mtime = await self._read(), mtime
        try:
            counts_mtime: float | None = (await self.driver.stat(paths.PULL_COUNTS)).mtime
        except PathNotFound:
            counts_mtime = None
        if counts_mtime != self._counts_mtime:
            self._counts, self._counts_mtime = await self._read_counts(), counts_mtime

    def count(self, key: Key) -> int:
        """Pulls of ``key`` (a repository's name, or ``tag_key``): stored plus not yet flushed."""
        return self._counts.get(key, 0) + self._counting.get(key, 0)

    def count_of_repository(self, name: str) -> int:
        return self.count(name)

    def count_of_tag(self, name: str, tag: str) -> int:
        return self.count(tag_key(name, tag))

    def last(self, key: Key) -> float | None:
        pending = self._pending.get(key)
        stored = self._stored.get(key)
        if pending is None:
            return stored
        return pending if stored is None else max(pending, stored)

    def of_tag(self, name: str, tag: str) -> float | None:
        return self.last(tag_key(name, tag))

    def of_digest(self, name: str, digest: str) -> float | None:
        return self.last(digest_key(name, digest))
