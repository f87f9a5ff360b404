"""Listing repositories: every directory under ``repositories/`` that holds a ``_manifests``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dockyard.errors import PathNotFound
from dockyard.oci.reference import is_valid_name
from dockyard.storage import paths
from dockyard.storage.driver import StorageDriver


class Catalog:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def walk_repositories(self, *, include_without_manifests: bool = False) -> AsyncIterator[str]:
        """Repository names in depth-first directory order."""
        stack = [""]
        while stack:
            prefix = stack.pop()
            base = f"{paths.REPOSITORIES}/{prefix}".rstrip("/")
            try:
                children = await self.driver.list(base)
            except PathNotFound:
                continue
            names = set(children)
            if prefix and (include_without_manifests or "_manifests" in names):
                yield prefix
            subdirs = sorted((c for c in names if not c.startswith("_")), reverse=True)
            for child in subdirs:
                full = f"{prefix}/{child}" if prefix else child
                if is_valid_name(full):
                    stack.append(full)

    async def list(self, n: int, last: str | None) -> tuple[list[str], bool]:
        """Up to ``n`` names sorted after ``last``, and whether more remain."""
        names = sorted([name async for name in self.walk_repositories()])
        if last is not None:
            names = [x for x in names if x > last]
        return names[:n], len(names) > n
