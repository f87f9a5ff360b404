"""Manifest revisions of a repository, and the referrers index kept beside them."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Sequence

from dockyard.errors import ManifestUnknown, PathNotFound
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.document import load, read_manifest
from dockyard.oci.manifest import Descriptor, Manifest
from dockyard.storage import paths
from dockyard.storage.blobs import BlobStore
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.links import read_link

_CACHE_ENTRIES = 8192
_CACHE_MAX_ITEM = 256 * 1024


def stored_media_type(body: bytes) -> str:
    """The media type to serve stored manifest bytes with."""
    doc = load(body)
    if doc is None:
        return mt.OCI_MANIFEST
    media_type = doc.get("mediaType")
    if isinstance(media_type, str) and media_type:
        return media_type
    if doc.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_SIGNED if "signatures" in doc else mt.DOCKER_SCHEMA1
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


class ManifestStore:
    def __init__(self, driver: CheckedDriver, blobs: BlobStore) -> None:
        self.driver = driver
        self.blobs = blobs
        # Content-addressed, so entries never go stale; visibility is checked on every read.
        self._cache: OrderedDict[Digest, tuple[str, bytes]] = OrderedDict()

    async def exists(self, name: str, digest: Digest) -> bool:
        return await read_link(self.driver, paths.revision_link(name, digest)) == digest

    async def get(self, name: str, digest: Digest) -> tuple[str, bytes]:
        """(media type, exact bytes) of a manifest in ``name``; MANIFEST_UNKNOWN otherwise."""
        if not await self.exists(name, digest):
            raise ManifestUnknown(name, str(digest))
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        try:
            body = await self.blobs.get_bytes(digest)
        except PathNotFound:
            raise ManifestUnknown(name, str(digest)) from None
        entry = (stored_media_type(body), body)
        if len(body) <= _CACHE_MAX_ITEM:
            self._cache[digest] = entry
            if len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return entry

    async def put(
        self, name: str, digest: Digest, body: bytes, manifest: Manifest, *, tags: Sequence[str] = ()
    ) -> None:
        """In one batch, in this order: the bytes (rewritten if stored already: same content, fresh
        timestamp), the revision link, the referrers link for a ``subject``, and for each tag its
        history entry and the tag itself. Every link holds ``digest`` as given (``sha512:…`` for a
        sha512 push), as distribution writes them."""
        link = paths.link_content(digest)
        links = [(paths.blob_data(digest), body), (paths.revision_link(name, digest), link)]
        if manifest.subject is not None:
            links.append((paths.referrer_link(name, manifest.subject.digest, digest), link))
        for tag in tags:
            links += [
                (paths.tag_index_link(name, tag, digest), link),
                (paths.tag_current_link(name, tag), link),
            ]
        await self.driver.put_many(links)

    async def delete(self, name: str, digest: Digest) -> None:
        if not await self.exists(name, digest):
            raise ManifestUnknown(name, str(digest))
        subject = await self.subject_of(digest)
        await self.driver.delete(paths.revision_dir(name, digest))
        if subject is not None:
            with contextlib.suppress(PathNotFound):
                await self.driver.delete(paths.referrer_link(name, subject, digest).rsplit("/", 1)[0])

    async def subject_of(self, digest: Digest) -> Digest | None:
        """The ``subject`` a stored manifest names (None: none, or the bytes are gone)."""
        try:
            subject = read_manifest(await self.blobs.get_bytes(digest)).subject
        except PathNotFound:
            return None
        return subject.digest if subject is not None else None

    async def referrers(self, name: str, subject: Digest) -> list[Descriptor]:
        """Descriptors of the manifests in ``name`` whose subject is ``subject``."""
        base = paths.referrers_dir(name, subject)
        found: list[Digest] = []
        try:
            algorithms = await self.driver.list_dir(base)
        except PathNotFound:
            return []
        for alg in algorithms:
            try:
                hexes = await self.driver.list_dir(f"{base}/{alg}")
            except PathNotFound:
                continue
            for hex_ in hexes:
                link = await read_link(self.driver, f"{base}/{alg}/{hex_}/link")
                if link is not None:
                    found.append(link)
        described = await asyncio.gather(*(self._describe(name, d) for d in sorted(found)))
        return [d for d in described if d is not None]

    async def _describe(self, name: str, digest: Digest) -> Descriptor | None:
        try:
            media_type, body = await self.get(name, digest)
        except ManifestUnknown:
            return None  # deleted since it was indexed
        doc = read_manifest(body)
        artifact_type = doc.artifact_type
        if not artifact_type and media_type in mt.IMAGE_MANIFESTS and doc.config is not None:
            artifact_type = doc.config.media_type or None
        return Descriptor(media_type, digest, len(body), artifact_type, doc.annotations or None)
