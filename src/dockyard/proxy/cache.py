"""Keeping the cache in bounds: what it holds, ``ttl`` expiry, the ``maxsize`` limit, and purges.

The unit is an *image*: a manifest of a cached repository that no index of the same repository
lists (its root), with the child manifests it lists that are cached, and the blobs all of them
reference. Its *last use* is the latest of: when it was cached (the coordinator's record of the
fetch, else the stored link's time) and when it or one of its children was last pulled (the pull
log every worker flushes; a pull within the last flush period may not be seen yet).

* **ttl** (per upstream, distribution's ``proxy.ttl``: how long cached content is kept): an image
  whose last use is older than its upstream's ``ttl`` is expired. Unlike distribution, which
  drops content ``ttl`` after it was fetched even while it is pulled every minute, a pull keeps
  it ("past its TTL and not pulled"). 0 keeps it for ever.
* **maxsize** (``proxy.cache.maxsize``): while the bytes only the cache holds exceed the limit,
  the least recently used images go first. Never evicted: content a hosted repository links
  (it is not the cache's: pushed images keep their layers), an image whose blob is being filled
  right now (its fill lock is held somewhere), and the bytes another kept image shares.
* **purge** (``dockyard cache purge``, ``POST /admin/v1/proxy/cache/purge``): every image of the
  repositories that match, at once.

Evicting deletes the image's tags and manifests, then runs a garbage collection in which the
evicted blobs skip the grace period (``GCOptions.evicted``), so the space is free when the run
ends; a push or fill that referenced one since the decision keeps it. The next pull fetches again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import LockBusy, ManifestUnknown
from dockyard.globs import glob_match
from dockyard.oci.digest import Digest
from dockyard.oci.document import read_manifest
from dockyard.proxy.inflight import Key
from dockyard.proxy.routing import Router
from dockyard.storage import gc, paths
from dockyard.storage.linked import linked_digests, linked_sizes, repositories
from dockyard.storage.liveness import revision_key
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.proxy")

# When a manifest or tag was last pulled (epoch seconds), None if never seen.
LastPulled = Callable[[str, str], Awaitable[float | None]]


@dataclass(slots=True)
class Image:
    repository: str
    upstream: str  # its upstream's URL
    ttl: float
    root: Digest
    manifests: set[Digest]
    blobs: set[Digest]  # config and layers referenced (stored or not)
    tags: list[str]
    cached_at: float
    last_pulled: float | None
    sizes: dict[Digest, int] = field(default_factory=dict)  # its digests stored in the repository

    @property
    def size(self) -> int:
        return sum(self.sizes.values())

    @property
    def last_used(self) -> float:
        return max(self.cached_at, self.last_pulled or 0.0)

    @property
    def digests(self) -> set[Digest]:
        return self.manifests | self.blobs

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": str(self.root),
            "tags": self.tags,
            "upstream": self.upstream,
            "bytes": self.size,
            "cachedAt": self.cached_at,
            "lastPulled": self.last_pulled,
            "expiresAt": self.last_used + self.ttl if self.ttl > 0 else None,
            "expired": self.ttl > 0 and now - self.last_used > self.ttl,
        }


@dataclass(slots=True)
class Evicted:
    image: Image
    reason: str  # "ttl", "size" or "purge"


@dataclass(slots=True)
class Report:
    dry_run: bool
    at: float
    evicted: list[Evicted] = field(default_factory=list)
    skipped_filling: list[str] = field(default_factory=list)
    cache_bytes: int = 0  # what only the cache held before
    max_bytes: int | None = None
    bytes_freed: int = 0  # what the collection freed (0 in a dry run)

    def to_json(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "at": self.at,
            "evicted": [{**e.image.to_json(self.at), "reason": e.reason} for e in self.evicted],
            "skippedFilling": self.skipped_filling,
            "cacheBytes": self.cache_bytes,
            "maxBytes": self.max_bytes,
            "bytesFreed": self.bytes_freed,
        }


class CacheManager:
    """``last_pulled(name, key)`` answers for a digest or a tag (the app wires the pull log);
    ``grace`` is the garbage collection's grace period for everything not evicted."""

    def __init__(
        self,
        registry: Registry,
        router: Router,
        last_pulled: LastPulled,
        *,
        maxsize: int | None,
        grace: float,
    ) -> None:
        self.registry = registry
        self.router = router
        self.last_pulled = last_pulled
        self.maxsize = maxsize
        self.grace = grace

    # -- what the cache holds --------------------------------------------------------------------

    async def images(self) -> tuple[list[Image], set[Digest]]:
        """Every cached image, and the digests hosted repositories link (never the cache's)."""
        driver = self.registry.driver
        hosted: set[Digest] = set()
        images: list[Image] = []
        names = await repositories(driver, include_without_manifests=True)
        cached = [n for n in names if self.router.prefixed(n) is not None]
        for name in names:
            if name not in cached:
                hosted |= await linked_digests(driver, name)
        sizes = await linked_sizes(driver, cached)
        for name in cached:
            images += await self._images_of(name, sizes[name])
        return images, hosted

    async def _images_of(self, name: str, sizes: dict[Digest, int]) -> list[Image]:
        target = self.router.prefixed(name)
        assert target is not None  # only cached repositories come here
        driver, coordinator = self.registry.driver, self.registry.coordinator
        revisions = paths.digests_in(await driver.list_tree(paths.revisions_dir(name)), 2)
        if not revisions:
            return []
        bodies = await driver.get_many([paths.blob_data(d) for d in revisions])
        docs = {d: read_manifest(b) for d, b in zip(revisions, bodies, strict=True)}
        children = {
            d: {r.digest for r in doc.manifests if r.digest is not None and r.digest in docs}
            for d, doc in docs.items()
        }
        listed = set().union(*children.values())
        tags: dict[Digest, list[str]] = {}
        for tag in await self.registry.tags.names(name):
            digest = await self.registry.tags.resolve(name, tag)
            if digest is not None:
                tags.setdefault(digest, []).append(tag)
        infos = await driver.stat_many([paths.revision_link(name, d) for d in revisions], files=True)
        records = await coordinator.last_referenced([revision_key(name, d) for d in revisions])
        cached_at = {
            d: rec if rec is not None else (info.mtime if info is not None else 0.0)
            for d, info, rec in zip(revisions, infos, records, strict=True)
        }
        out = []
        for root in (d for d in revisions if d not in listed or d in tags):
            manifests = {root} | children[root]
            blobs = {
                r.digest for m in manifests for r in docs[m].blobs if r.digest is not None and not r.foreign
            }
            pulled = [await self.last_pulled(name, str(m)) for m in manifests]
            pulled += [await self.last_pulled(name, t) for t in tags.get(root, [])]
            seen = [p for p in pulled if p is not None]
            image = Image(
                repository=name,
                upstream=target.upstream.url,
                ttl=target.upstream.config.ttl,
                root=root,
                manifests=manifests,
                blobs=blobs,
                tags=sorted(tags.get(root, [])),
                cached_at=max(cached_at[m] for m in manifests),
                last_pulled=max(seen) if seen else None,
            )
            image.sizes = {d: sizes[d] for d in image.digests if d in sizes}
            out.append(image)
        return out

    async def listing(self) -> dict[str, Any]:
        """``dockyard cache ls``: every cached image, newest use first, and the totals."""
        now = await self.registry.coordinator.now()
        images, hosted = await self.images()
        images.sort(key=lambda i: (-i.last_used, i.repository, str(i.root)))
        return {
            "images": [i.to_json(now) for i in images],
            "cacheBytes": _unique_bytes(images, hosted),
            "maxBytes": self.maxsize,
        }

    # -- keeping it in bounds ------------------------------------------------------------------

    async def maintain(self, *, dry_run: bool = False) -> Report:
        """Expire by ``ttl``, then evict by ``maxsize`` (the scheduled job)."""
        return await self._evict(lambda image, now: "ttl" if _expired(image, now) else None, dry_run)

    async def purge(self, patterns: list[str], *, dry_run: bool = False) -> Report:
        """Evict every image of the cached repositories matching ``patterns`` (globs)."""

        def chosen(image: Image, now: float) -> str | None:
            return "purge" if any(glob_match(p, image.repository) for p in patterns) else None

        return await self._evict(chosen, dry_run, limit=False)

    async def _evict(
        self, choose: Callable[[Image, float], str | None], dry_run: bool, *, limit: bool = True
    ) -> Report:
        coordinator = self.registry.coordinator
        now = await coordinator.now()
        report = Report(dry_run, now, max_bytes=self.maxsize)
        images, hosted = await self.images()
        report.cache_bytes = _unique_bytes(images, hosted)
        kept: list[Image] = []
        for image in images:
            reason = choose(image, now)
            if reason is not None and not await self._filling(image, report):
                report.evicted.append(Evicted(image, reason))
            else:
                kept.append(image)
        if limit and self.maxsize is not None:
            kept.sort(key=lambda i: (i.last_used, i.repository, str(i.root)))
            total = _unique_bytes(kept, hosted)
            while kept and total > self.maxsize:
                image = kept.pop(0)
                if await self._filling(image, report):
                    continue
                report.evicted.append(Evicted(image, "size"))
                total = _unique_bytes(kept, hosted) if kept else 0
        if not report.evicted or dry_run:
            return report
        remaining = {(i.repository, d) for i in kept for d in i.manifests}
        freed = {d for e in report.evicted for d in e.image.digests} - hosted
        freed -= {d for i in kept for d in i.digests}
        for evicted in report.evicted:
            image = evicted.image
            log.info(
                "evicting %s@%s from the cache (%s)",
                image.repository,
                image.root,
                evicted.reason,
                extra={"repository": image.repository, "digest": str(image.root), "reason": evicted.reason},
            )
            for tag in image.tags:
                if await self.registry.tags.untag(image.repository, tag):
                    await self.registry.listing.tag_removed(image.repository, tag)  # write-through
            for digest in sorted(image.manifests):
                if (image.repository, digest) not in remaining:
                    # (gone already: a client's delete, another eviction)
                    with contextlib.suppress(ManifestUnknown):
                        await self.registry.delete_manifest(image.repository, digest, force=True)
        options = gc.GCOptions(grace_seconds=self.grace, evicted=frozenset(freed), evicted_at=now)
        try:
            collected = await gc.collect(self.registry, options)
        except gc.CollectionRunning:
            log.info("cache eviction: a collection is running; the evicted blobs go at the next one")
        else:
            report.bytes_freed = collected.bytes_freed
        return report

    async def _filling(self, image: Image, report: Report) -> bool:
        """Whether a blob of ``image`` is being filled now (anywhere the coordinator reaches):
        such an image is in use, and is kept."""
        linked = await self.registry.driver.stat_many(
            [paths.layer_link(image.repository, d) for d in sorted(image.blobs)]
        )
        for digest, info in zip(sorted(image.blobs), linked, strict=True):
            if info is not None:
                continue
            try:
                async with self.registry.coordinator.lock(Key(image.repository, digest).lock, wait=False):
                    pass
            except LockBusy:
                report.skipped_filling.append(f"{image.repository}@{image.root}")
                return True
        return False


def _expired(image: Image, now: float) -> bool:
    return image.ttl > 0 and now - image.last_used > image.ttl


def _unique_bytes(images: list[Image], hosted: set[Digest]) -> int:
    """The bytes only the cache holds: each stored digest once, hosted content left out."""
    sizes: dict[Digest, int] = {}
    for image in images:
        sizes.update(image.sizes)
    return sum(size for d, size in sizes.items() if d not in hosted)
