"""Image configs read for people (listings, pages, inspection): one reader, one cache.

A config is a blob like any other, never validated at push, so it is read with the tolerant
reader (:mod:`dockyard.oci.document`) and only when it is small enough. Results are cached by
digest (a digest names immutable content).
"""

from __future__ import annotations

from collections import OrderedDict

from dockyard.errors import PathNotFound
from dockyard.oci.digest import Digest
from dockyard.oci.document import MAX_DOCUMENT, ImageConfig, Ref, read_config
from dockyard.storage.blobs import BlobStore

CACHE_ENTRIES = 4096
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


class ConfigReader:
    def __init__(self, blobs: BlobStore, entries: int = CACHE_ENTRIES) -> None:
        self.blobs = blobs
        self.entries = entries
        self._cache: OrderedDict[Digest, ImageConfig] = OrderedDict()

    async def read(self, ref: Ref | None, *, image_only: bool = False) -> ImageConfig:
        """The config a manifest's ``config`` descriptor names; an empty one when there is none,
        it is missing or too large, or (``image_only``) its media type is not an image config's."""
        if ref is None or ref.digest is None or (image_only and ref.media_type not in IMAGE_CONFIGS):
            return ImageConfig()
        digest = ref.digest
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        size = await self.blobs.size_global(digest)
        if size is None or size > MAX_DOCUMENT:
            return ImageConfig()
        try:
            config = read_config(await self.blobs.get_bytes(digest))
        except PathNotFound:
            return ImageConfig()
        self._cache[digest] = config
        if len(self._cache) > self.entries:
            self._cache.popitem(last=False)
        return config
