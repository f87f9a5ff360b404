"""Storage drivers, chosen by the name of the configuration's ``storage`` section."""

from __future__ import annotations

from typing import Any

from dockyard.storage.driver import StorageDriver


def create_driver(name: str, params: dict[str, Any]) -> StorageDriver:
    """Build the driver configured under ``storage.<name>``; unknown names fail loudly."""
    if name == "filesystem":
        from dockyard.storage.drivers.filesystem import FilesystemDriver

        return FilesystemDriver(
            params["rootdirectory"],
            fsync=params.get("fsync", True),
            threads=min(params.get("maxthreads", 100), 64),
        )
    if name == "inmemory":
        from dockyard.storage.drivers.memory import MemoryDriver

        return MemoryDriver()
    raise ValueError(f"unknown storage driver {name!r} (available: filesystem, inmemory)")
