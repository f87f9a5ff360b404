"""Modification times of many store files at once, through the driver's ``stat_many`` (one trip
to the filesystem driver's threads for the whole list)."""

from __future__ import annotations

from dockyard.storage.drivers.checked import CheckedDriver


async def mtimes(driver: CheckedDriver, store_paths: list[str]) -> list[float | None]:
    """The mtime of each path (None where it is missing), in order."""
    return [None if info is None else info.mtime for info in await driver.stat_many(store_paths)]
