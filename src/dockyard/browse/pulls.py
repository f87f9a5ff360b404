"""When each tag and manifest was last pulled, recorded without slowing pulls down.

A manifest ``GET`` (not ``HEAD``) costs one dict assignment in the worker that served it. Every
``FLUSH_SECONDS`` while there are new pulls, and at shutdown, the worker merges its pulls into
``_dockyard/last-pulled.json`` under a lock (keeping the later time per key). The file is derived
state: deleting it loses only the pull times. Readers see the file (re-read when it changes) plus
their own worker's pulls not yet flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
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
    ) -> None:
        self.driver = driver
        self.coordinator = coordinator
        self.flush_seconds = flush_seconds
        self.read_only = read_only  # a read-only registry writes nothing: pulls stay in memory
        self._pending: dict[Key, float] = {}
        self._stored: dict[Key, float] = {}
        self._stored_mtime: float | None = None
        self._checked = 0.0
        self._flush_task: asyncio.Task[None] | None = None

    def record(self, name: str, digest: str, tag: str | None) -> None:
        """Called on every manifest GET: O(1), no I/O."""
        now = time.time()
        self._pending[digest_key(name, digest)] = now
        if tag is not None:
            self._pending[tag_key(name, tag)] = now
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
        try:
            async with self.coordinator.lock("last-pulled"):
                merged = await self._read()
                for key, when in pending.items():
                    if when > merged.get(key, 0.0):
                        merged[key] = when
                await self.driver.put_content(paths.LAST_PULLED, json.dumps(merged).encode())
        except BaseException:
            for key, when in pending.items():  # keep them for the next try
                self._pending[key] = max(when, self._pending.get(key, 0.0))
            raise
        self._stored = merged
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
