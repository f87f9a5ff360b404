"""Listing tags and repositories for people (the Hub API and the web UI share it).

Fast with 10,000 tags or repositories: names come from the registry's listing (``storage.listing``:
the store's cached sorted lists, or the derived index); ordering by time
uses one mtime per entry (a tag's ``current/link``, a repository's ``_manifests/tags`` directory),
cached for a few seconds; only the tags of the requested page are described (manifests read).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.browse.describe import Describer, ManifestDesc
from dockyard.browse.mtimes import mtimes
from dockyard.browse.pulls import PullLog
from dockyard.errors import DomainError, NameUnknown, PathNotFound
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.linked import linked_sizes
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.browse")

TIMES_TTL = 5.0
SIZES_TTL = 30.0


@dataclass(slots=True)
class TagRow:
    name: str
    digest: str
    pushed: float | None
    pulled: float | None
    desc: ManifestDesc | None  # None when the manifest cannot be read
    failed: bool = False  # describing it raised: the row is shown, marked, and the error logged


@dataclass(slots=True)
class RepoRow:
    name: str
    updated: float | None


def order(names: list[str], ordering: str, when: Callable[[str], float | None]) -> list[str]:
    if ordering == "name":
        return names
    if ordering == "-name":
        return names[::-1]
    if ordering in ("last_updated", "-last_updated"):
        newest = ordering == "-last_updated"

        # Newest first sorts by (-time, name); entries without a time go last either way.
        def key(n: str) -> tuple[bool, float, str]:
            t = when(n)
            return (t is None, -(t or 0.0) if newest else (t or 0.0), n)

        return sorted(names, key=key)
    return names  # pull_count orders repositories only: the Hub API sorts those by PullLog.count


class Browser:
    def __init__(self, registry: Registry, pulls: PullLog) -> None:
        self.registry = registry
        self.pulls = pulls
        self.describer = Describer(registry)
        self._tag_times: dict[str, tuple[float, dict[str, float | None]]] = {}
        self._repo_times: tuple[float, dict[str, float | None]] = (0.0, {})
        self._sizes: dict[str, tuple[float, int]] = {}
        self._blob_sizes: dict[Digest, int] = {}
        self._generation: int | None = None

    async def _revalidate(self) -> None:
        """Drop the cached times and sizes if any process (or replica) changed a repository since
        they were read (``Registry.content_changed``): one generation read, no waiting out a TTL.
        The TTLs still bound what no generation announces (another tool writing the store)."""
        generation = await self.registry.content_generation()
        if generation != self._generation:
            self._tag_times.clear()
            self._repo_times = (0.0, {})
            self._sizes.clear()
            self._generation = generation

    # -- tags ----------------------------------------------------------------------------------

    async def tag_times(self, name: str, tags: list[str]) -> dict[str, float | None]:
        await self._revalidate()
        cached = self._tag_times.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < TIMES_TTL and all(t in cached[1] for t in tags):
            return cached[1]
        found = await mtimes(self.registry.driver, [paths.tag_current_link(name, t) for t in tags])
        times = dict(zip(tags, found, strict=True))
        if len(self._tag_times) > 256:
            self._tag_times.clear()
        self._tag_times[name] = (now, times)
        return times

    async def tag_names(self, name: str, needle: str, ordering: str) -> list[str]:
        """Every tag of ``name`` containing ``needle``, in ``ordering``; NAME_UNKNOWN if no repository."""
        tags = await self.registry.listing.tags(name)
        if not tags and not await self.registry.repository_exists(name):
            await self.registry.listing.repository_missing(name)
            raise NameUnknown(name)
        if needle:
            tags = [t for t in tags if needle in t]
        if ordering in ("name", "-name"):
            return order(tags, ordering, lambda _: None)
        times = await self.tag_times(name, tags)
        return order(tags, ordering, times.get)

    async def tag_rows(self, name: str, tags: list[str]) -> list[TagRow]:
        await self.pulls.refresh()
        times = await mtimes(self.registry.driver, [paths.tag_current_link(name, t) for t in tags])
        rows = []
        for tag, pushed in zip(tags, times, strict=True):
            digest = await self.registry.tags.resolve(name, tag)
            if digest is None:  # deleted meanwhile, or behind the index's back
                await self.registry.listing.tag_missing(name, tag)
                continue
            failed = False
            try:
                desc: ManifestDesc | None = await self.describer.describe(name, digest)
            except (DomainError, PathNotFound, ValueError):
                desc = None
            except Exception:  # one odd tag must not take the whole listing down with it
                log.exception("cannot describe a tag", extra={"repository": name, "tag": tag})
                desc, failed = None, True
            rows.append(TagRow(tag, str(digest), pushed, self.pulls.of_tag(name, tag), desc, failed))
        return rows

    async def tag_row(self, name: str, tag: str) -> TagRow | None:
        rows = await self.tag_rows(name, [tag])
        return rows[0] if rows else None

    # -- repositories --------------------------------------------------------------------------

    async def repo_times(self, names: list[str]) -> dict[str, float | None]:
        await self._revalidate()
        stamp, times = self._repo_times
        now = time.monotonic()
        if now - stamp < TIMES_TTL and all(n in times for n in names):
            return times
        found = await mtimes(self.registry.driver, [paths.tags_dir(n) for n in names])
        times = dict(zip(names, found, strict=True))
        self._repo_times = (now, times)
        return times

    async def repo_names(
        self, names: list[str], needle: str, ordering: str, visible: Callable[[str], bool] | None
    ) -> list[str]:
        if visible is not None:
            names = [n for n in names if visible(n)]
        if needle:
            names = [n for n in names if needle in n]
        if ordering in ("last_updated", "-last_updated"):
            times = await self.repo_times(names)
            return order(names, ordering, times.get)
        return order(names, ordering, lambda _: None)

    async def repository_times(self, name: str) -> tuple[float | None, float | None]:
        """(last updated, registered) of a repository: its tags directory's and its own mtime."""
        found = await mtimes(self.registry.driver, [paths.tags_dir(name), paths.repository(name)])
        return found[0], found[1]

    async def repo_rows(self, names: list[str]) -> list[RepoRow]:
        times = await mtimes(self.registry.driver, [paths.tags_dir(n) for n in names])
        return [RepoRow(n, t) for n, t in zip(names, times, strict=True)]

    async def storage_size(self, name: str) -> int:
        """Bytes of every blob and manifest the repository links, each once (cached briefly)."""
        await self._revalidate()
        cached = self._sizes.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < SIZES_TTL:
            return cached[1]
        if len(self._blob_sizes) > 200_000:
            self._blob_sizes.clear()
        linked = await linked_sizes(self.registry.driver, [name], self._blob_sizes)
        total = sum(linked[name].values())
        if len(self._sizes) > 10_000:
            self._sizes.clear()
        self._sizes[name] = (now, total)
        return total
