"""Online garbage collection: mark from every kept manifest, sweep what nothing reaches.

It runs while pushes and pulls go on, with no read-only window. The argument (ARCHITECTURE.md
has it in full) rests on two things the coordinator guarantees: a readers/writer lock that spans
every process and replica (``gc``), and one clock (``Coordinator.now``: the host's for the local
coordinator, the database's ``now()`` for PostgreSQL) that stamps liveness records.

- Writers that make content reachable (manifest PUT, blob commit, mount) hold the ``gc`` lock
  *shared* while they verify their references exist, record them as referenced now
  (``Coordinator.referenced``, keys from ``storage.liveness``) and publish.
- The sweep deletes in batches, each under the ``gc`` lock held *exclusively*, and re-checks every
  candidate inside the batch: anything whose record is newer than the cutoff is kept. So a writer
  either finished before the batch (its record is visible to the re-check) or starts after it (and
  finds the deleted content missing, and fails cleanly instead of publishing a dangling reference).
- The collection starts with a barrier (the ``gc`` lock taken exclusively, then released) and reads
  the coordinator's clock inside it (``started``): every writer in flight at that instant has
  published, so the mark sees it; every later writer records what it uses after that instant, by
  the same clock, so the re-check sees it as fresh. The cutoff is ``started - TIMESTAMP_SLACK``
  (or the grace period, if that reaches further back): the slack covers a clock stepped back a
  little between the barrier and a record, the only way one clock can disagree with itself.
- Fresh uploads whose manifest has not arrived yet were recorded at commit, within the grace period.
- Content stored before the coordinator kept records has none; its storage timestamp stands in.

Only one collection runs at a time across all workers (the ``gc-run`` lock).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.errors import GCRunning, LockBusy, PathNotFound
from dockyard.events import CollectionFinished
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.document import ManifestDoc, Ref, read_manifest
from dockyard.storage import paths
from dockyard.storage.links import parse_link, read_link
from dockyard.storage.liveness import blob_key, revision_key
from dockyard.storage.registry import Registry
from dockyard.storage.uploads import GC_LOCK

log = logging.getLogger("dockyard.gc")
RUN_LOCK = "gc-run"
TIMESTAMP_SLACK = 2.0
BATCH = 200
Progress = Callable[[str, int, int], None]


# Another garbage collection is running on this store: the domain tree's GCRunning, under the
# name this module's callers know.
CollectionRunning = GCRunning


@dataclass(frozen=True, slots=True)
class GCOptions:
    dry_run: bool = False
    delete_untagged: bool = False
    grace_seconds: float = 3600.0
    upload_age_seconds: float | None = None
    # Blobs a pull-through cache evicted (``proxy.cache``) and when it decided to, by the
    # coordinator's clock: these are swept without the grace period (a cache that must shrink
    # cannot wait an hour), yet anything that referenced one of them since the decision (a push,
    # a fill) keeps it, as the barrier does for every other blob.
    evicted: frozenset[Digest] = frozenset()
    evicted_at: float = 0.0


@dataclass(slots=True)
class GCReport:
    dry_run: bool
    delete_untagged: bool
    started: float = 0.0
    finished: float = 0.0
    repositories: int = 0
    blobs_total: int = 0
    blobs_marked: int = 0
    blobs_deleted: list[dict[str, Any]] = field(default_factory=list)
    manifests_deleted: list[dict[str, str]] = field(default_factory=list)
    layer_links_deleted: int = 0
    kept_recent: int = 0
    uploads_purged: int = 0
    repositories_removed: list[str] = field(default_factory=list)
    temporaries_removed: int = 0
    # Digests kept manifests reference that the store does not hold: what sparse pushes left out
    # (validation.manifests), or content lost outside the registry. Nothing to delete; reported.
    missing: list[str] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(int(b["size"]) for b in self.blobs_deleted)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["bytes_freed"] = self.bytes_freed
        out["seconds"] = round(self.finished - self.started, 3)
        return out


class Collector:
    def __init__(self, registry: Registry, options: GCOptions, progress: Progress | None = None) -> None:
        self.registry = registry
        self.driver = registry.driver
        self.coordinator = registry.coordinator
        self.options = options
        self.progress = progress or (lambda phase, done, total: None)
        self.marked: set[Digest] = set()
        self.report = GCReport(options.dry_run, options.delete_untagged)
        self._wall_started = time.time()  # the driver's leftovers carry the storage's own clock

    async def run(self) -> GCReport:
        try:
            async with self.coordinator.lock(RUN_LOCK, wait=False):
                async with self.coordinator.lock(GC_LOCK):  # the barrier: no writer is mid-publish
                    self.report.started = await self.coordinator.now()
                    self._wall_started = time.time()
                await self._collect()
                self.report.finished = await self.coordinator.now()
        except LockBusy:
            raise GCRunning() from None
        await self._save_report()
        report = self.report
        if report.blobs_deleted or report.manifests_deleted:
            await self.registry.content_changed()
        self.registry.events.emit(
            CollectionFinished(
                blobs_deleted=len(report.blobs_deleted),
                manifests_deleted=len(report.manifests_deleted),
                bytes_freed=report.bytes_freed,
                seconds=report.finished - report.started,
                dry_run=self.options.dry_run,
            )
        )
        log.info(
            "garbage collection finished",
            extra={
                "dry_run": self.options.dry_run,
                "blobs_deleted": len(self.report.blobs_deleted),
                "manifests_deleted": len(self.report.manifests_deleted),
                "bytes_freed": self.report.bytes_freed,
                "seconds": round(self.report.finished - self.report.started, 3),
            },
        )
        return self.report

    async def _save_report(self) -> None:
        if not self.options.dry_run:
            body = json.dumps(self.report.to_json()).encode()
            await self.driver.put_content(paths.GC_LAST_REPORT, body)

    async def prune_repository(self, name: str) -> list[dict[str, str]]:
        """Only the manifest phases, for one repository (``prune_untagged``)."""
        async with self.coordinator.lock(GC_LOCK):
            self.report.started = await self.coordinator.now()
        candidates = await self._mark_repository(name)
        if candidates:
            await self._sweep_manifests({name: candidates})
        return self.report.manifests_deleted

    # -- mark ----------------------------------------------------------------------------------

    async def _collect(self) -> None:
        repos = await self.registry.catalog.walk_repositories(include_without_manifests=True)
        self.report.repositories = len(repos)
        untagged: dict[str, list[Digest]] = {}
        for i, name in enumerate(repos):
            self.progress("mark", i, len(repos))
            candidates = await self._mark_repository(name)
            if candidates:
                untagged[name] = candidates
        self.progress("mark", len(repos), len(repos))
        if self.options.delete_untagged:
            await self._sweep_manifests(untagged)
        await self._sweep_blobs()
        await self._sweep_layer_links(repos)
        if self.options.upload_age_seconds is not None and not self.options.dry_run:
            self.report.uploads_purged = await self.registry.purge_uploads(
                self.options.upload_age_seconds, time.time()
            )
        await self._remove_empty_repositories(repos)
        if not self.options.dry_run:
            # Leftovers of writes and deletes interrupted by a crash (never visible, never used).
            cutoff = min(self._wall_started - TIMESTAMP_SLACK, time.time() - self.options.grace_seconds)
            self.report.temporaries_removed = await self.driver.cleanup(cutoff)

    async def _revisions(self, name: str) -> list[Digest]:
        return paths.digests_in(await self.driver.list_tree(paths.revisions_dir(name)), 2)

    async def _tagged(self, name: str) -> set[Digest]:
        tags = await self.registry.tags.names(name)
        links = await self.driver.get_many([paths.tag_current_link(name, tag) for tag in tags])
        return {d for d in (parse_link(raw) for raw in links if raw is not None) if d is not None}

    async def _referrers(self, name: str) -> dict[Digest, list[Digest]]:
        tree = await self.driver.list_tree(f"{paths.repository(name)}/_referrers")
        out: dict[Digest, list[Digest]] = {}
        for rel, children in tree.items():
            parts = rel.split("/") if rel else []
            if len(parts) != 3:
                continue
            try:
                subject = Digest.parse(f"{parts[0]}:{parts[1]}")
                out.setdefault(subject, []).extend(Digest.parse(f"{parts[2]}:{c}") for c in children)
            except DigestError:
                continue
        return out

    async def _mark_repository(self, name: str) -> list[Digest]:
        """Mark everything ``name`` keeps; return its untagged, unreachable revisions."""
        revisions = await self._revisions(name)
        if not revisions:
            return []
        roots = await self._tagged(name) if self.options.delete_untagged else set(revisions)
        kept = await self._closure(name, roots & set(revisions), await self._referrers(name))
        return [d for d in revisions if d not in kept]

    async def _closure(
        self, name: str, roots: Iterable[Digest], referrers: dict[Digest, list[Digest]]
    ) -> set[Digest]:
        """Manifests reachable from ``roots`` (children, and referrers of anything kept); their
        content and every blob they reference are added to the global mark set."""
        kept: set[Digest] = set()
        frontier = set(roots)
        revisions = set(frontier)
        while frontier:  # breadth first: one storage round trip per level, per BATCH manifests
            kept |= frontier
            self.marked |= frontier
            level = sorted(frontier)
            frontier = set()
            for start in range(0, len(level), BATCH):
                batch = level[start : start + BATCH]
                bodies = await self.driver.get_many([paths.blob_data(d) for d in batch])
                for digest, body in zip(batch, bodies, strict=True):
                    frontier.update(referrers.get(digest, ()))
                    if body is None and digest not in revisions:
                        continue  # a child a sparse index names, not stored: reported as missing
                    doc = _manifest_doc(digest, body)
                    frontier.update(d for d in map(_descriptor_digest, doc.manifests) if d is not None)
                    self.marked.update(d for d in map(_descriptor_digest, doc.blobs) if d is not None)
                    self.marked.update(doc.salvaged)
            frontier -= kept
        return kept

    # -- sweep ---------------------------------------------------------------------------------

    async def _fresh(
        self, keys: list[str], mtimes: list[float], evicted: list[bool] | None = None
    ) -> list[bool]:
        """For each liveness key: referenced since this collection began, or within the grace
        period, by the coordinator's clock (for ``evicted`` ones: since the eviction was decided).
        Content with no record at all was stored before the coordinator kept records (an upgraded
        store): its storage timestamp stands in."""
        now = await self.coordinator.now()
        cutoff = min(self.report.started - TIMESTAMP_SLACK, now - self.options.grace_seconds)
        quick = min(self.report.started, self.options.evicted_at) - TIMESTAMP_SLACK
        last = await self.coordinator.last_referenced(keys)
        flags = evicted if evicted is not None else [False] * len(keys)
        return [
            (at if at is not None else mtime) >= (quick if ev else cutoff)
            for at, mtime, ev in zip(last, mtimes, flags, strict=True)
        ]

    async def _sweep_manifests(self, untagged: dict[str, list[Digest]]) -> None:
        total = sum(len(v) for v in untagged.values())
        done = 0
        for name, candidates in untagged.items():
            for start in range(0, len(candidates), BATCH):
                batch = candidates[start : start + BATCH]
                if self.options.dry_run:
                    self.report.manifests_deleted += [{"repository": name, "digest": str(d)} for d in batch]
                else:
                    async with self.coordinator.lock(GC_LOCK):
                        await self._delete_manifests(name, batch)
                done += len(batch)
                self.progress("manifests", done, total)

    async def _delete_manifests(self, name: str, batch: list[Digest]) -> None:
        """Inside an exclusive batch: re-check each untagged revision, then delete it."""
        tagged = await self._tagged(name)
        referrers = await self._referrers(name)
        tags = await self.registry.tags.names(name)
        infos = await self.driver.stat_many([paths.revision_link(name, d) for d in batch], files=True)
        present = [(d, info) for d, info in zip(batch, infos, strict=True) if info is not None]
        keys = [revision_key(name, d) for d, _ in present]
        fresh = await self._fresh(keys, [info.mtime for _, info in present])
        deleted = []
        for (digest, _), recent in zip(present, fresh, strict=True):
            if digest in tagged or recent:
                # Tagged, pushed or referenced by a new index since the mark: keep it and its content.
                self.report.kept_recent += 1
                await self._closure(name, [digest], referrers)
                continue
            subject = await self.registry.manifests.subject_of(digest)
            await self.driver.delete(paths.revision_dir(name, digest))
            for tag in tags:
                index_entry = paths.tag_index_link(name, tag, digest).rsplit("/", 1)[0]
                with contextlib.suppress(PathNotFound):
                    await self.driver.delete(index_entry)
            if subject is not None:
                with contextlib.suppress(PathNotFound):
                    await self.driver.delete(paths.referrer_link(name, subject, digest).rsplit("/", 1)[0])
            self.report.manifests_deleted.append({"repository": name, "digest": str(digest)})
            deleted.append(revision_key(name, digest))
        await self.coordinator.forget(deleted)

    async def _sweep_blobs(self) -> None:
        stored = paths.digests_in(await self.driver.list_tree(paths.BLOBS), 3)
        self.report.missing = sorted(str(d) for d in self.marked - set(stored))
        self.report.blobs_total = len(stored)
        self.report.blobs_marked = sum(1 for d in stored if d in self.marked)
        candidates = [d for d in stored if d not in self.marked]
        for start in range(0, len(candidates), BATCH):
            batch = candidates[start : start + BATCH]
            if self.options.dry_run:
                await self._account(batch, delete=False)
            else:
                async with self.coordinator.lock(GC_LOCK):
                    await self._account(batch, delete=True)
            self.progress("blobs", min(start + BATCH, len(candidates)), len(candidates))

    async def _account(self, batch: list[Digest], *, delete: bool) -> None:
        """Inside an exclusive batch: re-check each candidate blob, then delete the old ones."""
        batch = [d for d in batch if d not in self.marked]  # re-marked by a revision kept at re-check
        infos = await self.driver.stat_many([paths.blob_data(d) for d in batch], files=True)
        present = [(d, info) for d, info in zip(batch, infos, strict=True) if info is not None]
        fresh = await self._fresh(
            [blob_key(d) for d, _ in present],
            [info.mtime for _, info in present],
            [d in self.options.evicted for d, _ in present],
        )
        doomed = []
        for (digest, info), recent in zip(present, fresh, strict=True):
            if recent:
                self.report.kept_recent += 1
                continue
            doomed.append((digest, info.size))
        if delete:
            done = await self.driver.delete_many([paths.blob_dir(d) for d, _ in doomed])
            doomed = [item for item, ok in zip(doomed, done, strict=True) if ok]
            await self.coordinator.forget([blob_key(d) for d, _ in doomed])
        self.report.blobs_deleted += [{"digest": str(d), "size": size} for d, size in doomed]

    async def _sweep_layer_links(self, repos: list[str]) -> None:
        """Drop repository links to blobs that are gone (or going, in a dry run).

        A blob the sweep deleted may have been uploaded again since (its manifest was refused
        with MANIFEST_BLOB_UNKNOWN, the client pushed the blob again and then the manifest), and
        its upload wrote the link anew. So the links are deleted under the ``gc`` lock held
        exclusively, for blobs still absent then: a link whose blob is back stays."""
        deleted = {Digest.parse(b["digest"]) for b in self.report.blobs_deleted}
        for name in repos:
            tree = await self.driver.list_tree(f"{paths.repository(name)}/_layers")
            unmarked = [d for d in paths.digests_in(tree, 2) if d not in self.marked]
            stored = await self.driver.stat_many([paths.blob_data(d) for d in unmarked], files=True)
            gone = [d for d, info in zip(unmarked, stored, strict=True) if d in deleted or info is None]
            if gone and not self.options.dry_run:
                async with self.coordinator.lock(GC_LOCK):
                    again = await self.driver.stat_many([paths.blob_data(d) for d in gone], files=True)
                    gone = [d for d, info in zip(gone, again, strict=True) if info is None]
                    done = await self.driver.delete_many([paths.layer_dir(name, d) for d in gone])
                gone = [d for d, ok in zip(gone, done, strict=True) if ok]
            self.report.layer_links_deleted += len(gone)

    async def _remove_empty_repositories(self, repos: list[str]) -> None:
        if self.options.dry_run:
            return
        for name in repos:
            if await self.registry.remove_if_empty(name):
                self.report.repositories_removed.append(name)


def _manifest_doc(digest: Digest, body: bytes | None) -> ManifestDoc:
    """The manifest as read by the tolerant reader. When it cannot be read, every digest written in
    it is still marked (``salvaged``): a collection keeps too much rather than too little."""
    doc = read_manifest(body)
    if not doc.readable:
        log.warning("manifest content missing or unreadable", extra={"digest": str(digest)})
    return doc


def _descriptor_digest(desc: Ref) -> Digest | None:
    return None if desc.foreign else desc.digest


async def collect(registry: Registry, options: GCOptions, progress: Progress | None = None) -> GCReport:
    return await Collector(registry, options, progress).run()


async def prune_untagged(registry: Registry, name: str, options: GCOptions) -> list[dict[str, str]]:
    """Delete the untagged, unreachable manifests of one repository (the blobs they free go at the
    next collection), with the same barrier and re-checks as a collection."""
    return await Collector(registry, options).prune_repository(name)


async def last_report(registry: Registry) -> dict[str, Any] | None:
    try:
        raw = await registry.driver.get_content(paths.GC_LAST_REPORT)
    except PathNotFound:
        return None
    result: dict[str, Any] = json.loads(raw)
    return result


__all__ = [
    "CollectionRunning",
    "GCOptions",
    "GCReport",
    "collect",
    "last_report",
    "prune_untagged",
    "read_link",
]
