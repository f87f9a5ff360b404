"""Modification times of many store files at once: one thread walking local paths when the
driver has them (filesystem), else concurrent ``stat`` calls."""

from __future__ import annotations

import asyncio
import os

from dockyard.errors import PathNotFound
from dockyard.storage.driver import StorageDriver

_BATCH = 256


def _local_mtimes(local: list[tuple[int, str]], out: list[float | None]) -> None:
    for i, path in local:
        try:
            out[i] = os.stat(path).st_mtime
        except OSError:
            out[i] = None


async def mtimes(driver: StorageDriver, store_paths: list[str]) -> list[float | None]:
    """The mtime of each path (None where it is missing), in order."""
    out: list[float | None] = [None] * len(store_paths)
    local: list[tuple[int, str]] = []
    remote: list[tuple[int, str]] = []
    for i, path in enumerate(store_paths):
        os_path = driver.local_path(path)
        (local if os_path is not None else remote).append((i, os_path or path))
    if local:
        await asyncio.to_thread(_local_mtimes, local, out)

    async def one(i: int, path: str) -> None:
        try:
            out[i] = (await driver.stat(path)).mtime
        except PathNotFound:
            out[i] = None

    for start in range(0, len(remote), _BATCH):
        await asyncio.gather(*(one(i, p) for i, p in remote[start : start + _BATCH]))
    return out
