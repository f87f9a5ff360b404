"""What a manifest is, for listings: media type, size and one entry per platform image.

Results are cached per process by digest (a digest names immutable content), so a page of tags
costs a few reads the first time and none after. Documents are read with the tolerant reader
(:mod:`dockyard.oci.document`): odd content describes as "unknown", it never raises.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from dockyard.errors import DomainError
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.document import UNKNOWN, ManifestDoc, Platform, read_manifest
from dockyard.storage.configs import ConfigReader
from dockyard.storage.registry import Registry

_CACHE = 50_000


@dataclass(frozen=True, slots=True)
class ImageDesc:
    digest: str
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: str = ""
    features: str = ""
    size: int = 0  # compressed: the image's layers
    missing: bool = False  # named by a sparse index, not in the repository

    @property
    def platform(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class ManifestDesc:
    digest: str
    media_type: str
    content_type: str  # "image", or "artifact" for other OCI artifacts
    full_size: int  # every distinct layer of every platform, once
    images: list[ImageDesc] = field(default_factory=list)
    artifact_type: str | None = None


def _layers(doc: ManifestDoc) -> dict[str, int]:
    return {str(layer.digest): layer.size or 0 for layer in doc.layers if layer.digest is not None}


class Describer:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.configs = ConfigReader(registry.blobs)
        self._cache: OrderedDict[str, ManifestDesc] = OrderedDict()

    async def describe(self, name: str, digest: Digest) -> ManifestDesc:
        key = str(digest)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        desc = await self._describe(name, digest)
        if any(i.missing for i in desc.images):
            return desc  # presence can change (the child may be pushed later): not cached
        self._cache[key] = desc
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return desc

    async def _doc(self, name: str, digest: Digest) -> tuple[str, ManifestDoc]:
        media_type, body = await self.registry.manifests.get(name, digest)
        return media_type, read_manifest(body)

    async def _describe(self, name: str, digest: Digest) -> ManifestDesc:
        media_type, doc = await self._doc(name, digest)
        artifact = doc.artifact_type
        if media_type not in mt.INDEXES:
            config = await self.configs.read(doc.config, image_only=True)
            layers = _layers(doc)
            images = []
            if config.platform.known:
                images.append(self._image(str(digest), config.platform, sum(layers.values())))
            kind = "image" if config.found and not artifact else "artifact"
            return ManifestDesc(str(digest), media_type, kind, sum(layers.values()), images, artifact)
        images, every_layer = [], {}
        for child in doc.manifests:
            platform = child.platform or Platform()
            if not platform.os or platform.os == UNKNOWN:  # attestations, not images
                continue
            if child.digest is None:
                continue
            try:
                _, child_doc = await self._doc(name, child.digest)
            except DomainError:  # a sparse index's absent child: listed, as missing
                images.append(self._image(str(child.digest), platform, 0, missing=True))
                continue
            layers = _layers(child_doc)
            every_layer.update(layers)
            images.append(self._image(str(child.digest), platform, sum(layers.values())))
        return ManifestDesc(str(digest), media_type, "image", sum(every_layer.values()), images, artifact)

    @staticmethod
    def _image(digest: str, platform: Platform, size: int, *, missing: bool = False) -> ImageDesc:
        return ImageDesc(
            digest=digest,
            os=platform.os,
            architecture=platform.architecture,
            variant=platform.variant,
            os_version=platform.os_version,
            os_features=",".join(platform.os_features),
            features=",".join(platform.features),
            size=size,
            missing=missing,
        )
