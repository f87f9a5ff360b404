"""The registry model: every operation the API performs, written once above the driver."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from dockyard.coord.base import Coordinator
from dockyard.errors import (
    DigestMismatch,
    ManifestInvalid,
    ManifestReferenced,
    ManifestUnknown,
    Missing,
    NameUnknown,
    PathNotFound,
    ReferencesMissing,
)
from dockyard.events import (
    BlobPushed,
    EventSink,
    ManifestDeleted,
    ManifestPulled,
    ManifestPushed,
    NullSink,
    RepositoryDeleted,
    TagDeleted,
    TagResolved,
)
from dockyard.events.order import Ordering, Unordered
from dockyard.oci.digest import Digest
from dockyard.oci.document import read_manifest
from dockyard.oci.manifest import Descriptor, Manifest, ManifestError, parse_manifest
from dockyard.oci.mediatypes import INDEXES
from dockyard.storage import paths
from dockyard.storage.blobs import BlobStore, StoredBlob
from dockyard.storage.catalog import Catalog
from dockyard.storage.driver import StorageDriver
from dockyard.storage.drivers.checked import CheckedDriver, checked
from dockyard.storage.index import IndexedListing, IndexRows
from dockyard.storage.listing import Listing, StoreListing
from dockyard.storage.liveness import blob_key, revision_key
from dockyard.storage.manifests import ManifestStore
from dockyard.storage.model import Admit, BlobSource, Chunks, PutResult, Visible
from dockyard.storage.quota import Quotas
from dockyard.storage.sparse import Presence
from dockyard.storage.tags import TagStore
from dockyard.storage.uploads import GC_LOCK, SESSION_ID, UploadStore

CONTENT = "content"  # the coordinator's generation of what repositories hold (``content_changed``)


class Registry:
    """The registry model over a storage driver (``storage.model.RegistryModel``, which the API's
    handlers call, plus what maintenance, the CLI and the read model use). ``events`` hears of
    every change after it is committed, and of every manifest a client fetches
    (``pull_manifest``); see ``dockyard.events``. ``listing`` answers every listing and is
    written through after each commit: the store walked (``storage.listing``), or with ``index``
    (``database.dsn``) the derived index (``storage.index``). ``ordering`` is held around each
    change of a repository and its events, so their order is the changes' (``events.order``)."""

    def __init__(
        self,
        driver: StorageDriver | CheckedDriver,
        quotas: Quotas | None = None,
        *,
        coordinator: Coordinator,
        events: EventSink | None = None,
        presence: Presence | None = None,
        index: IndexRows | None = None,
        ordering: Ordering | None = None,
        track_moves: bool = False,
    ) -> None:
        self.driver = driver = checked(driver)
        self.ordering = ordering = ordering or Unordered()
        self.presence = presence or Presence()
        self.coordinator = coordinator
        self.quotas = quotas
        self.events = events or NullSink()
        # Whether a push reads what its tags named before, so its events tell a tag moved (the
        # audit log's ``tag-move``): one small read per tag, paid only when someone listens.
        self.track_moves = track_moves
        self.blobs = BlobStore(driver)
        self.uploads = UploadStore(driver, self.blobs, coordinator, quotas, self.events, ordering)
        self.manifests = ManifestStore(driver, self.blobs)
        self.tags = TagStore(driver)
        self.catalog = Catalog(driver, coordinator)
        self.index = IndexedListing(index, driver, self.tags) if index is not None else None
        self.listing: Listing = self.index or StoreListing(self.catalog, self.tags)

    async def content_changed(self) -> None:
        """Tell every process (and replica) that some repository's manifests, tags or linked
        bytes changed, so the read model's caches (``browse``, the UI's usage) are dropped."""
        await self.coordinator.bump(CONTENT)

    async def content_generation(self) -> int:
        """Moves on after every change :meth:`content_changed` announces."""
        return await self.coordinator.generation(CONTENT)

    async def repository_exists(self, name: str) -> bool:
        return await self.driver.exists(paths.manifests_dir(name))

    # -- manifests -----------------------------------------------------------------------------

    async def resolve(self, name: str, reference: str | Digest) -> Digest:
        if isinstance(reference, Digest):
            return reference
        digest = await self.tags.resolve(name, reference)
        if digest is None:
            await self.listing.tag_missing(name, reference)
            raise ManifestUnknown(name, reference)
        return digest

    async def get_manifest(self, name: str, reference: str | Digest) -> tuple[Digest, str, bytes]:
        digest = await self.resolve(name, reference)
        media_type, body = await self.manifests.get(name, digest)
        return digest, media_type, body

    async def pull_manifest(
        self, name: str, reference: str | Digest, *, head: bool, admit: Admit | None = None
    ) -> tuple[Digest, str, bytes]:
        """``get_manifest`` for a client's ``GET`` or ``HEAD``, told to the subscribers: a ``GET``
        is a pull, a ``HEAD`` by tag only resolves the tag (see ``events.TagResolved``). A pull
        ``admit`` refuses is not told."""
        digest, media_type, body = await self.get_manifest(name, reference)
        if admit is not None:
            await admit(digest, media_type, body)
        tag = reference if isinstance(reference, str) else None
        if not head:
            self.events.emit(ManifestPulled(name, str(digest), tag, media_type, len(body)))
        elif tag is not None:
            self.events.emit(TagResolved(name, tag, str(digest)))
        return digest, media_type, body

    async def put_manifest(
        self,
        name: str,
        reference: str | Digest,
        body: bytes,
        content_type: str | None,
        *,
        tags: Sequence[str] = (),
    ) -> PutResult:
        """A push by tag is stored under the bytes' sha256 digest (the canonical one) and tagged;
        a push by digest under exactly that digest (sha256 or sha512), and each of ``tags`` (the
        ``?tag=`` parameters) points at that digest: a tag resolves to the digest its client
        pushed, never to another algorithm's."""
        try:
            manifest = parse_manifest(body, content_type)
        except ManifestError as exc:
            raise ManifestInvalid(str(exc)) from None
        digest = Digest.of(body, reference.algorithm if isinstance(reference, Digest) else "sha256")
        if isinstance(reference, Digest) and reference != digest:
            raise DigestMismatch(str(reference), str(digest), upload=False)
        all_tags = [reference, *tags] if isinstance(reference, str) else list(tags)
        new_repository = False
        if not self.catalog.is_known(name):
            if await self.repository_exists(name):
                self.catalog.remember(name)
            else:
                new_repository = True
        async with self.ordering.change(name):
            before = {t: await self.tags.resolve(name, t) for t in all_tags} if self.track_moves else {}
            # Under the shared gc lock: references are verified and recorded as referenced now,
            # and the manifest made visible, before any sweep batch can re-check them (storage.gc).
            async with self.coordinator.lock(GC_LOCK, shared=True):
                await self._check_references(name, manifest)
                children = [d.digest for d in manifest.manifests]
                await self.coordinator.referenced(
                    [blob_key(d.digest) for d in manifest.required_blobs()]
                    + [blob_key(d) for d in [*children, digest]]
                    + [revision_key(name, d) for d in [*children, digest]]
                )
                await self.manifests.put(name, digest, body, manifest, tags=all_tags)
            await self.listing.stored(name, all_tags, new_repository=new_repository)
            await self.content_changed()
            # One event per tag, as that many pushes by tag would tell (one untagged when none).
            subject = str(manifest.subject.digest) if manifest.subject else None
            for tag in all_tags or (None,):
                moved = before.get(tag) if tag is not None else None
                previous = str(moved) if moved is not None and moved != digest else None
                self.events.emit(
                    ManifestPushed(name, str(digest), manifest.media_type, tag, len(body), subject, previous)
                )
        return PutResult(digest, manifest.subject.digest if manifest.subject else None)

    async def put_mirrored_manifest(
        self, name: str, digest: Digest, body: bytes, manifest: Manifest, tag: str | None
    ) -> None:
        """Store a manifest a pull-through cache fetched (``dockyard.proxy``): its exact bytes,
        ``digest`` verified by the caller, and ``tag`` pointed at it, without the references a
        push must bring (the cache fetches a manifest's blobs and children only when they are
        pulled). Recorded as referenced like a push, so a concurrent collection keeps it."""
        new_repository = not self.catalog.is_known(name) and not await self.repository_exists(name)
        async with self.coordinator.lock(GC_LOCK, shared=True):
            await self.coordinator.referenced([blob_key(digest), revision_key(name, digest)])
            await self.manifests.put(name, digest, body, manifest, tags=[tag] if tag else [])
        await self.listing.stored(name, [tag] if tag else [], new_repository=new_repository)
        await self.content_changed()

    async def _check_references(self, name: str, manifest: Manifest) -> None:
        """Every referenced blob (child manifest) the ``presence`` policy requires must be linked
        in ``name`` and stored."""
        blobs, children = self.presence.blobs(manifest), self.presence.children(manifest)
        absent = await self.absent(name, [d.digest for d in blobs], [d.digest for d in children])
        missing = [d for d in blobs + children if d.digest in absent]
        if missing:
            raise ReferencesMissing(name, [Missing(d.media_type, str(d.digest)) for d in missing])

    async def absent(self, name: str, blobs: Sequence[Digest], children: Sequence[Digest]) -> set[Digest]:
        """Which of ``blobs`` (configs, layers) and ``children`` (child manifests) are not in
        ``name``: not linked there, or their bytes are gone. One round trip to storage. What a
        sparse push left out (``storage.sparse``) reads as absent here, for the pages and
        inspection to show as missing."""
        if not blobs and not children:
            return set()
        links = [paths.layer_link(name, d) for d in blobs]
        links += [paths.revision_link(name, d) for d in children]
        wanted = [*blobs, *children]
        data = [paths.blob_data(d) for d in wanted]
        found = [info is not None for info in await self.driver.stat_many(links + data, files=True)]
        linked, stored = found[: len(links)], found[len(links) :]
        return {d for d, a, b in zip(wanted, linked, stored, strict=True) if not (a and b)}

    async def referencing_indexes(self, name: str, digest: Digest) -> list[Digest]:
        """Indexes in ``name`` that list ``digest`` as a child manifest."""
        found = []
        for candidate in paths.digests_in(await self.driver.list_tree(paths.revisions_dir(name)), 2):
            if candidate == digest:
                continue
            try:
                media_type, body = await self.manifests.get(name, candidate)
            except ManifestUnknown:
                continue
            children = read_manifest(body).manifests if media_type in INDEXES else ()
            if any(m.digest == digest for m in children):
                found.append(candidate)
        return found

    async def delete_manifest(self, name: str, reference: str | Digest, *, force: bool = False) -> None:
        async with self.ordering.change(name):
            await self._delete_manifest(name, reference, force=force)

    async def _delete_manifest(self, name: str, reference: str | Digest, *, force: bool) -> None:
        if isinstance(reference, str):
            if not await self.tags.untag(name, reference):
                await self.listing.tag_missing(name, reference)
                raise ManifestUnknown(name, reference)
            await self.listing.tag_removed(name, reference)
            await self.content_changed()
            self.events.emit(TagDeleted(name, reference))
            return
        if not force and await self.manifests.exists(name, reference):
            parents = await self.referencing_indexes(name, reference)
            if parents:
                raise ManifestReferenced(str(reference), [str(p) for p in parents])
        await self.manifests.delete(name, reference)
        self.events.emit(ManifestDeleted(name, str(reference)))
        for tag in await self.tags.tags_for(name, reference):
            if await self.tags.untag(name, tag):
                await self.listing.tag_removed(name, tag)
                self.events.emit(TagDeleted(name, tag))
        await self.content_changed()

    # -- blobs ---------------------------------------------------------------------------------

    async def stat_blob(self, name: str, digest: Digest) -> int:
        return await self.blobs.stat(name, digest)

    async def open_blob(self, name: str, digest: Digest) -> BlobSource:
        size = await self.blobs.stat(name, digest)
        return StoredBlob(self.driver, paths.blob_data(digest), size)

    async def delete_blob(self, name: str, digest: Digest) -> None:
        await self.blobs.unlink(name, digest)

    async def mount_blob(
        self, name: str, digest: Digest, source: str | None, visible: Visible = None
    ) -> bool:
        """Link an existing blob into ``name``: from ``source`` if given; else, under access
        control (``visible``), only from a repository the caller may pull, so a mount cannot
        reveal the content of a private one; else from anywhere."""
        if source is None and visible is not None:
            source = await self._mount_source(digest, visible)
            if source is None:
                return False
        if source is not None and not await self.blobs.is_linked(source, digest):
            return False
        if self.quotas is not None:
            size = await self.blobs.size_global(digest)
            await self.quotas.check(name, digest, size or 0)
        async with self.ordering.change(name):
            async with self.coordinator.lock(GC_LOCK, shared=True):
                if await self.blobs.size_global(digest) is None:
                    return False
                await self.coordinator.referenced([blob_key(digest)])
                await self.blobs.link(name, digest)
            size = await self.blobs.size_global(digest) or 0
            if self.quotas is not None:
                await self.quotas.added(name, digest, size)
            self.events.emit(BlobPushed(name, str(digest), size, mounted=True))
        return True

    async def _mount_source(self, digest: Digest, visible: Callable[[str], bool]) -> str | None:
        """A repository ``visible`` allows that links ``digest``, or None (then upload normally)."""
        if await self.blobs.size_global(digest) is None:
            return None
        for name in await self.catalog.walk_repositories(include_without_manifests=True):
            if visible(name) and await self.blobs.is_linked(name, digest):
                return name
        return None

    # -- uploads -------------------------------------------------------------------------------

    async def push_blob(self, name: str, digest: Digest, chunks: Chunks, declared: int | None) -> int:
        if self.quotas is not None and declared is not None:
            # Refused before any byte is stored: the size is known up front.
            await self.quotas.check(name, digest, declared)
        return await self.uploads.monolithic(name, digest, chunks)

    async def start_upload(self, name: str, algorithm: str = "sha256") -> str:
        return await self.uploads.start(name, algorithm)

    async def append_upload(self, name: str, upload_id: str, chunks: Chunks, *, start: int | None) -> int:
        return await self.uploads.append(name, upload_id, chunks, start=start)

    async def upload_status(self, name: str, upload_id: str) -> int:
        return await self.uploads.size(name, upload_id)

    async def finish_upload(self, name: str, upload_id: str, digest: Digest, chunks: Chunks | None) -> int:
        return await self.uploads.finish(name, upload_id, digest, chunks)

    async def cancel_upload(self, name: str, upload_id: str) -> None:
        await self.uploads.cancel(name, upload_id)

    # -- listings ------------------------------------------------------------------------------

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        return await self.listing.tags_page(name, n, last)

    async def catalog_page(self, n: int, last: str | None, visible: Visible) -> tuple[list[str], bool]:
        if visible is None:
            return await self.listing.repositories_page(n, last)
        allowed = [x for x in await self.listing.repositories() if (last is None or x > last) and visible(x)]
        return allowed[:n], len(allowed) > n

    async def referrers(self, name: str, subject: Digest) -> list[Descriptor]:
        return await self.manifests.referrers(name, subject)

    async def delete_repository(self, name: str) -> None:
        """Remove a repository whole: tags, manifests, links and uploads. Content shared with
        other repositories stays; garbage collection frees what nothing else uses."""
        async with self.ordering.change(name):
            async with self.coordinator.lock(GC_LOCK):
                try:
                    await self.driver.delete(paths.repository(name))
                except PathNotFound:
                    raise NameUnknown(name) from None
            await self.listing.repository_removed(name)
            await self.content_changed()
            self.events.emit(RepositoryDeleted(name))

    async def remove_if_empty(self, name: str) -> bool:
        """Drop a repository that has no manifests left (so it leaves the catalog)."""
        async with self.coordinator.lock(GC_LOCK):
            revisions = await self.driver.list_tree(paths.revisions_dir(name))
            if any(children for rel, children in revisions.items() if rel):  # any <alg>/<hex>
                return False
            if not await self.driver.exists(paths.repository(name)):
                return False
            uploads = await self.driver.list_tree(paths.uploads_dir(name))
            if uploads.get(""):
                for part in ("_manifests", "_layers", "_referrers"):
                    with contextlib.suppress(PathNotFound):
                        await self.driver.delete(f"{paths.repository(name)}/{part}")
            else:
                await self.driver.delete(paths.repository(name))
        await self.listing.repository_removed(name)
        return True

    async def purge_uploads(self, older_than_seconds: float, now: float) -> int:
        """Delete upload sessions idle for longer than the cutoff; returns how many.

        A session is active while its data was written within the cutoff (by the storage's
        clock, against ``now``) or its coordinator record says so (last activity, by the
        coordinator's clock: what counts where writes leave no timestamp, as in an object store's
        multipart upload). Sessions without a record (another tool's, or older) go by their data
        alone. Records whose session is gone are dropped too."""
        purged = 0
        coordinator_now = await self.coordinator.now()
        for name in await self.catalog.walk_repositories(include_without_manifests=True):
            try:
                ids = await self.driver.list_dir(paths.uploads_dir(name))
            except PathNotFound:
                continue
            for upload_id in ids:
                try:
                    info = await self.driver.stat(paths.upload_data(name, upload_id))
                except PathNotFound:
                    info = None
                if info is not None and now - info.mtime <= older_than_seconds:
                    continue
                record = (
                    await self.coordinator.get_session(upload_id) if SESSION_ID.fullmatch(upload_id) else None
                )
                if record is not None and coordinator_now - record.updated_at <= older_than_seconds:
                    continue
                try:
                    await self.driver.delete(paths.upload_dir(name, upload_id))
                    purged += 1
                except PathNotFound:
                    pass
                if record is not None:
                    await self.coordinator.delete_session(upload_id)
        for record in await self.coordinator.idle_sessions(older_than_seconds):
            if not await self.driver.exists(paths.upload_data(record.repository, record.id)):
                await self.coordinator.delete_session(record.id)
        return purged
