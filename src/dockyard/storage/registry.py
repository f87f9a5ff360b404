"""The registry model: every operation the API performs, written once above the driver."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dockyard.errors import ErrorCode, PathNotFound, RegistryError
from dockyard.oci.digest import Digest
from dockyard.oci.manifest import Descriptor, Manifest, ManifestError, parse_manifest
from dockyard.storage import paths
from dockyard.storage.blobs import BlobStore
from dockyard.storage.catalog import Catalog
from dockyard.storage.driver import StorageDriver
from dockyard.storage.manifests import ManifestStore, manifest_unknown
from dockyard.storage.tags import TagStore
from dockyard.storage.uploads import UploadStore


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: Digest
    subject: Digest | None


class Registry:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self.blobs = BlobStore(driver)
        self.uploads = UploadStore(driver, self.blobs)
        self.manifests = ManifestStore(driver, self.blobs)
        self.tags = TagStore(driver)
        self.catalog = Catalog(driver)

    async def repository_exists(self, name: str) -> bool:
        return await self.driver.exists(paths.manifests_dir(name))

    # -- manifests -----------------------------------------------------------------------------

    async def resolve(self, name: str, reference: str | Digest) -> Digest:
        if isinstance(reference, Digest):
            return reference
        digest = await self.tags.resolve(name, reference)
        if digest is None:
            raise manifest_unknown(name, reference)
        return digest

    async def get_manifest(self, name: str, reference: str | Digest) -> tuple[Digest, str, bytes]:
        digest = await self.resolve(name, reference)
        media_type, body = await self.manifests.get(name, digest)
        return digest, media_type, body

    async def put_manifest(
        self, name: str, reference: str | Digest, body: bytes, content_type: str | None
    ) -> PutResult:
        try:
            manifest = parse_manifest(body, content_type)
        except ManifestError as exc:
            raise RegistryError(ErrorCode.MANIFEST_INVALID, str(exc)) from None
        digest = Digest.of(body, reference.algorithm if isinstance(reference, Digest) else "sha256")
        if isinstance(reference, Digest) and reference != digest:
            raise RegistryError(
                ErrorCode.DIGEST_INVALID,
                f"manifest content has digest {digest}, not {reference} as in the URL",
                str(reference),
            )
        await self._check_references(name, manifest)
        new_repository = not self.catalog.is_known(name) and not await self.repository_exists(name)
        await self.manifests.put(name, digest, body, manifest)
        if isinstance(reference, str):
            await self.tags.tag(name, reference, digest)
        if new_repository:
            await self.catalog.note_repository(name)
        return PutResult(digest, manifest.subject.digest if manifest.subject else None)

    async def _check_references(self, name: str, manifest: Manifest) -> None:
        async def missing(desc: Descriptor, as_manifest: bool) -> Descriptor | None:
            if as_manifest:
                ok = await self.manifests.exists(name, desc.digest)
            else:
                ok = await self.blobs.is_linked(name, desc.digest) and (
                    await self.blobs.size_global(desc.digest) is not None
                )
            return None if ok else desc

        checks = [missing(d, False) for d in manifest.required_blobs()]
        checks += [missing(d, True) for d in manifest.manifests]
        absent = [d for d in await asyncio.gather(*checks) if d is not None]
        if absent:
            entries = [
                (
                    ErrorCode.MANIFEST_BLOB_UNKNOWN,
                    f"{d.media_type} {d.digest} is not in repository {name}",
                    str(d.digest),
                )
                for d in absent
            ]
            first, *more = entries
            raise RegistryError(first[0], first[1], first[2], more=more)

    async def delete_manifest(self, name: str, reference: str | Digest) -> None:
        if isinstance(reference, str):
            if not await self.tags.untag(name, reference):
                raise manifest_unknown(name, reference)
            return
        await self.manifests.delete(name, reference)
        for tag in await self.tags.tags_for(name, reference):
            await self.tags.untag(name, tag)

    # -- blobs ---------------------------------------------------------------------------------

    async def mount_blob(self, name: str, digest: Digest, source: str | None) -> bool:
        """Link an existing blob into ``name``: from ``source`` if given, else from anywhere."""
        if await self.blobs.size_global(digest) is None:
            return False
        if source is not None and not await self.blobs.is_linked(source, digest):
            return False
        await self.blobs.link(name, digest)
        return True

    async def purge_uploads(self, older_than_seconds: float, now: float) -> int:
        """Delete upload sessions started longer ago than the cutoff; returns how many."""
        purged = 0
        for name in await self.catalog.walk_repositories(include_without_manifests=True):
            try:
                ids = await self.driver.list_dir(paths.uploads_dir(name))
            except PathNotFound:
                continue
            for upload_id in ids:
                try:
                    # The data file's mtime is the session's last activity.
                    info = await self.driver.stat(paths.upload_data(name, upload_id))
                except PathNotFound:
                    info = None
                if info is not None and now - info.mtime <= older_than_seconds:
                    continue
                try:
                    await self.driver.delete(paths.upload_dir(name, upload_id))
                    purged += 1
                except PathNotFound:
                    pass
        return purged
