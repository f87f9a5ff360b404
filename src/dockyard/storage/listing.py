"""Listings of repositories and tags: the seam every read path that lists goes through.

``/v2/_catalog``, ``/v2/<name>/tags/list``, the Hub API and the UI ask a :class:`Listing`; the
registry model tells it of every change after the store committed it (write-through). Two
implementations:

- :class:`StoreListing` (no ``database.dsn``): the store is walked, with the per-process caches
  of ``storage.catalog`` and ``storage.tags`` (one machine; what dockyard always did).
- ``storage.index.IndexedListing`` (``database.dsn``): a derived index in PostgreSQL that every
  replica writes through, rebuilt from the store on demand and reconciled with it periodically.

Either way the store stays the source of truth: reading one tag or manifest always goes to the
store, and whatever must never be wrong (garbage collection's marks, retention) walks the store.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Protocol

from dockyard.errors import NameUnknown
from dockyard.storage import paths
from dockyard.storage.catalog import Catalog
from dockyard.storage.tags import TagStore


def page_of(names: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Up to ``n`` (None: all) of the sorted ``names`` after ``last``, and whether more remain."""
    start = bisect.bisect_right(names, last) if last is not None else 0
    end = len(names) if n is None else start + n
    return names[start:end], end < len(names)


class Listing(Protocol):
    # -- reads ---------------------------------------------------------------------------------

    async def repositories(self) -> list[str]:
        """Every repository name, sorted."""
        ...

    async def repositories_page(self, n: int, last: str | None) -> tuple[list[str], bool]:
        """Up to ``n`` names sorted after ``last``, and whether more remain."""
        ...

    async def tags(self, name: str) -> list[str]:
        """Every tag of ``name`` in ASCII order; [] when it has none (or does not exist)."""
        ...

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        """Up to ``n`` (None: all) tags after ``last`` and whether more remain; ``NameUnknown``
        when the store has no such repository."""
        ...

    # -- write-through: called after the store committed the change ----------------------------

    async def stored(self, name: str, tags: Sequence[str], *, new_repository: bool) -> None:
        """A manifest landed in ``name`` and ``tags`` now name it (none: pushed by digest);
        ``new_repository`` when the store had no such repository before."""
        ...

    async def tag_removed(self, name: str, tag: str) -> None: ...

    async def repository_removed(self, name: str) -> None: ...

    # -- healing: a read of one entry found the store without it -------------------------------

    async def tag_missing(self, name: str, tag: str) -> None:
        """The store has no tag ``tag`` in ``name`` (a pull or a row of a listing found it gone)."""
        ...

    async def repository_missing(self, name: str) -> None:
        """The store has no repository ``name``."""
        ...


class StoreListing:
    """Listings walked from the store, cached per process (``Catalog``, ``TagStore``)."""

    def __init__(self, catalog: Catalog, tags: TagStore) -> None:
        self.catalog = catalog
        self.tag_store = tags
        self.driver = catalog.driver

    async def repositories(self) -> list[str]:
        return await self.catalog.names()

    async def repositories_page(self, n: int, last: str | None) -> tuple[list[str], bool]:
        return await self.catalog.page(n, last)

    async def tags(self, name: str) -> list[str]:
        return await self.tag_store.names(name)

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        tags = await self.tag_store.names(name)
        if not tags and not await self.driver.exists(paths.manifests_dir(name)):
            raise NameUnknown(name)
        return page_of(tags, n, last)

    async def stored(self, name: str, tags: Sequence[str], *, new_repository: bool) -> None:
        if new_repository:
            await self.catalog.note_repository(name)
        else:
            self.catalog.remember(name)

    async def tag_removed(self, name: str, tag: str) -> None:
        return None  # the tags directory's token changed: the next listing re-reads it

    async def repository_removed(self, name: str) -> None:
        await self.catalog.note_removed(name)

    async def tag_missing(self, name: str, tag: str) -> None:
        return None  # listings are read from the store itself

    async def repository_missing(self, name: str) -> None:
        return None
