"""Listing repositories: every directory under ``repositories/`` that holds a ``_manifests``.

The sorted list is derived from the store and cached per process. Whoever creates or removes a
repository bumps the coordinator's ``catalog`` generation after the change, and every listing
reads it first, so all workers (and replicas) see a new repository at once; a cache older than
``MAX_AGE`` is rebuilt regardless (repositories created by other tools sharing the directory).
"""

from __future__ import annotations

import bisect
import time

from dockyard.coord.base import Coordinator
from dockyard.oci.reference import is_valid_name
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.linked import repositories

MAX_AGE = 30.0
TOPIC = "catalog"  # the coordinator's generation that counts repositories appearing and going


class Catalog:
    def __init__(self, driver: CheckedDriver, coordinator: Coordinator) -> None:
        self.driver = driver
        self.coordinator = coordinator
        self._names: list[str] = []
        self._generation: int | None = None
        self._built = 0.0
        self._known: set[str] = set()

    async def changed(self) -> None:
        """Tell every worker that a repository appeared or disappeared."""
        await self.coordinator.bump(TOPIC)

    async def scan(self) -> list[str]:
        """Walk the store: sorted names of every directory holding ``_manifests``."""
        tree = await self.driver.list_tree(paths.REPOSITORIES)
        names = [
            rel for rel, children in tree.items() if rel and "_manifests" in children and is_valid_name(rel)
        ]
        names.sort()
        return names

    async def names(self) -> list[str]:
        generation = await self.coordinator.generation(TOPIC)
        if generation != self._generation or time.monotonic() - self._built > MAX_AGE:
            self._names = await self.scan()
            self._generation = generation
            self._built = time.monotonic()
            self._known = set(self._names)
        return self._names

    async def page(self, n: int, last: str | None) -> tuple[list[str], bool]:
        """Up to ``n`` names sorted after ``last``, and whether more remain."""
        names = await self.names()
        start = bisect.bisect_right(names, last) if last is not None else 0
        page = names[start : start + n]
        return page, start + n < len(names)

    async def walk_repositories(self, *, include_without_manifests: bool = False) -> list[str]:
        """Every repository name, walked now (``storage.linked.repositories``)."""
        return await repositories(self.driver, include_without_manifests=include_without_manifests)

    async def note_repository(self, name: str) -> None:
        """Called after a manifest lands in ``name`` if ``name`` was new to the store."""
        self._known.add(name)
        await self.changed()

    async def note_removed(self, name: str) -> None:
        """Called after ``name`` was removed from the store."""
        self._known.discard(name)
        await self.changed()

    def remember(self, name: str) -> None:
        """``name`` is in the store (seen there), as a listing would have found: no check next time."""
        self._known.add(name)

    def is_known(self, name: str) -> bool:
        return name in self._known
