"""The content-addressed blob store and the per-repository links that make a blob visible."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from dockyard.errors import BlobUnknown, PathNotFound
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.links import read_link, write_link

REDIRECT_SECONDS = 20 * 60.0  # how long a redirect URL stays valid (distribution's default)


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A stored blob as a ``storage.model.BlobSource``: a signed URL when the driver makes them
    (and ``storage.redirect.disable`` is false), a local path when it has one, else the driver's
    stream."""

    driver: CheckedDriver
    path: str
    size: int

    async def redirect_url(self) -> str | None:
        return await self.driver.redirect_url(self.path, REDIRECT_SECONDS)

    def local_path(self) -> str | None:
        return self.driver.local_path(self.path)

    def read(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.driver.read(self.path, offset, length)


class BlobStore:
    def __init__(self, driver: CheckedDriver) -> None:
        self.driver = driver

    async def size_global(self, digest: Digest) -> int | None:
        """Size of the stored content, or None if the registry does not hold it."""
        try:
            info = await self.driver.stat(paths.blob_data(digest))
        except PathNotFound:
            return None
        return info.size

    async def is_linked(self, name: str, digest: Digest) -> bool:
        return await read_link(self.driver, paths.layer_link(name, digest)) == digest

    async def stat(self, name: str, digest: Digest) -> int:
        """Size of a blob visible in ``name`` (linked there, and stored); BLOB_UNKNOWN otherwise."""
        link, data = await self.driver.stat_many(
            [paths.layer_link(name, digest), paths.blob_data(digest)], files=True
        )
        if link is not None and data is not None:
            return data.size
        raise BlobUnknown(name, str(digest))

    async def link(self, name: str, digest: Digest) -> None:
        await write_link(self.driver, paths.layer_link(name, digest), digest)

    async def unlink(self, name: str, digest: Digest) -> None:
        try:
            await self.driver.delete(paths.layer_dir(name, digest))
        except PathNotFound:
            raise BlobUnknown(name, str(digest)) from None

    async def get_bytes(self, digest: Digest) -> bytes:
        return await self.driver.get_content(paths.blob_data(digest))
