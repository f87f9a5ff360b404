"""The derived index of repositories and tags: fast listings for replicas sharing one store.

Walking an object store to list is slow: a catalog of 10,000 repositories is a listing of every
key below ``repositories/`` (distribution pays that for every page; ``storage.catalog`` once per
change, on every process). With ``database.dsn`` the listings answer from rows in PostgreSQL
instead (``coord.index``), and the store stays the source of truth:

- **Write-through.** The registry model changes the store, then the index (``Listing.stored``,
  ``tag_removed``, ``repository_removed``), before the client is answered, so a listing on any
  replica shows a push as soon as the push is acknowledged. Not through the after-commit event
  sink: subscribers must not wait on I/O, and the index write must finish before the answer.
- **Reads of one entry heal.** Pulling a tag, and each row of a Hub or UI listing, reads the store;
  a tag the store no longer has is dropped from the index. A repository the index knows no tags
  of is listed from the store (and the index filled from it).
- **Reconcile.** :meth:`IndexedListing.reconcile` walks the store and fixes every row that differs.
  The maintenance scheduler runs it on one replica at a time (``database.index.reconcileinterval``),
  and ``dockyard index rebuild`` on demand (which also recreates dropped tables). This is what heals
  a replica that crashed between its store write and its index write, a lost index write (the
  database was down), and writes by other tools to the bucket. A walk takes time while others
  write: rows changed since the walk began are left alone, and removals leave tombstones for
  a while (:data:`TOMBSTONE_SECONDS`) so a walk that saw a since-deleted tag cannot bring it back.

What must never be wrong walks the store itself, never this index: garbage collection's marks,
retention, upload purging, mount sources.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dockyard.errors import NameUnknown
from dockyard.oci.reference import is_valid_name
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.listing import page_of
from dockyard.storage.tags import TagStore

# Tombstones are kept this long: longer than any walk of the store takes.
TOMBSTONE_SECONDS = 3600.0
RECONCILE_INTERVAL = 300.0  # database.index.reconcileinterval's default (seconds)


class IndexRows(Protocol):
    """The index's storage (``coord.index.PostgresIndexRows``)."""

    async def now(self) -> float: ...
    async def ensure_tables(self) -> None: ...
    async def repositories(self) -> list[str]: ...
    async def repositories_page(self, n: int, last: str | None) -> tuple[list[str], bool]: ...
    async def tags(self, name: str) -> list[str]: ...
    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]: ...
    async def snapshot(self) -> tuple[set[str], set[tuple[str, str]]]: ...
    async def put(self, name: str, tags: Sequence[str]) -> None: ...
    async def remove_tag(self, name: str, tag: str) -> None: ...
    async def remove_repository(self, name: str) -> None: ...
    async def drop_tag(self, name: str, tag: str) -> bool: ...
    async def drop_repository(self, name: str) -> bool: ...
    async def apply(
        self,
        *,
        add_repositories: Sequence[str],
        drop_repositories: Sequence[str],
        add_tags: Sequence[tuple[str, str]],
        drop_tags: Sequence[tuple[str, str]],
        before: float,
    ) -> tuple[int, int, int, int]: ...
    async def purge(self, before: float) -> None: ...


@dataclass(frozen=True, slots=True)
class StoreContents:
    """What the store lists: repositories and (repository, tag) pairs."""

    repositories: set[str]
    tags: set[tuple[str, str]]


async def walk(driver: CheckedDriver) -> StoreContents:
    """The store's listing, walked now: the same repositories ``Catalog.scan`` finds (directories
    holding ``_manifests``) and, in each, the entries of ``_manifests/tags`` (as ``TagStore``
    lists them). One walk of everything below ``repositories/``: on an object store that is one
    flat listing, a request per 1,000 keys."""
    tree = await driver.list_tree(paths.REPOSITORIES, skip_prefix="")
    repos = {rel for rel, children in tree.items() if rel and "_manifests" in children and is_valid_name(rel)}
    tags = {(name, tag) for name in repos for tag in tree.get(f"{name}/_manifests/tags", ())}
    return StoreContents(repos, tags)


@dataclass(frozen=True, slots=True)
class Difference:
    """Rows the index lacks (``add_*``) or holds wrongly (``drop_*``)."""

    add_repositories: list[str]
    drop_repositories: list[str]
    add_tags: list[tuple[str, str]]
    drop_tags: list[tuple[str, str]]

    @property
    def empty(self) -> bool:
        return not (self.add_repositories or self.drop_repositories or self.add_tags or self.drop_tags)


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What a reconcile found and changed."""

    repositories: int  # in the store
    tags: int
    repositories_added: int
    repositories_dropped: int
    tags_added: int
    tags_dropped: int
    seconds: float


class IndexedListing:
    """``storage.listing.Listing`` from the index, healed from the store (module docstring)."""

    def __init__(self, rows: IndexRows, driver: CheckedDriver, tags: TagStore) -> None:
        self.rows = rows
        self.driver = driver
        self.tag_store = tags

    # -- reads ---------------------------------------------------------------------------------

    async def repositories(self) -> list[str]:
        return await self.rows.repositories()

    async def repositories_page(self, n: int, last: str | None) -> tuple[list[str], bool]:
        return await self.rows.repositories_page(n, last)

    async def tags(self, name: str) -> list[str]:
        found = await self.rows.tags(name)
        return found if found else await self._tags_from_store(name)

    async def _tags_from_store(self, name: str) -> list[str]:
        """The index knows no tag of ``name``: list the store's (one repository, so cheap), and
        fill the index with what it has (guarded like a reconcile: a tag removed meanwhile stays
        removed)."""
        began = await self.rows.now()
        stored = await self.tag_store.names(name)
        if stored:
            await self.rows.apply(
                add_repositories=[name],
                drop_repositories=[],
                add_tags=[(name, t) for t in stored],
                drop_tags=[],
                before=began,
            )
        return stored

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        page, more = await self.rows.tags_page(name, n, last)
        if page:
            return page, more
        tags = await self.tags(name)
        if not tags and not await self.driver.exists(paths.manifests_dir(name)):
            await self.rows.drop_repository(name)
            raise NameUnknown(name)
        return page_of(tags, n, last)

    # -- write-through -------------------------------------------------------------------------

    async def stored(self, name: str, tags: Sequence[str], *, new_repository: bool) -> None:
        await self.rows.put(name, tags)

    async def tag_removed(self, name: str, tag: str) -> None:
        await self.rows.remove_tag(name, tag)

    async def repository_removed(self, name: str) -> None:
        await self.rows.remove_repository(name)

    # -- healing -------------------------------------------------------------------------------

    async def tag_missing(self, name: str, tag: str) -> None:
        if await self.rows.drop_tag(name, tag) and not await self.driver.exists(paths.manifests_dir(name)):
            await self.rows.drop_repository(name)

    async def repository_missing(self, name: str) -> None:
        await self.rows.drop_repository(name)

    # -- reconcile -----------------------------------------------------------------------------

    async def difference(self) -> tuple[float, StoreContents, Difference]:
        """(when the walk began by the index's clock, the store's contents, how the index differs)."""
        began = await self.rows.now()
        store = await walk(self.driver)
        repos, tags = await self.rows.snapshot()
        return (
            began,
            store,
            Difference(
                sorted(store.repositories - repos),
                sorted(repos - store.repositories),
                sorted(store.tags - tags),
                sorted(tags - store.tags),
            ),
        )

    async def reconcile(self) -> Reconciled:
        """Walk the store and make the index say what it says (idempotent; safe beside serving
        replicas and beside another reconcile)."""
        started = time.monotonic()
        began, store, diff = await self.difference()
        counts = (0, 0, 0, 0)
        if not diff.empty:
            counts = await self.rows.apply(
                add_repositories=diff.add_repositories,
                drop_repositories=diff.drop_repositories,
                add_tags=diff.add_tags,
                drop_tags=diff.drop_tags,
                before=began,
            )
        await self.rows.purge(began - TOMBSTONE_SECONDS)
        return Reconciled(
            len(store.repositories), len(store.tags), *counts, seconds=time.monotonic() - started
        )

    async def rebuild(self) -> Reconciled:
        """Recreate the tables if they were dropped, then reconcile."""
        await self.rows.ensure_tables()
        return await self.reconcile()
