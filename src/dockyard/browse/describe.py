"""What a manifest is, for listings: media type, size and one entry per platform image.

Results are cached per process by digest (a digest names immutable content), so a page of tags
costs a few reads the first time and none after.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import PathNotFound, RegistryError
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError
from dockyard.storage.registry import Registry

_CACHE = 50_000
_MAX_CONFIG = 4 * 1024 * 1024
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


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


def _layers(doc: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for layer in doc.get("layers") or []:
        if isinstance(layer, dict) and isinstance(layer.get("digest"), str):
            size = layer.get("size")
            out[layer["digest"]] = size if isinstance(size, int) else 0
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


class Describer:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: OrderedDict[str, ManifestDesc] = OrderedDict()

    async def describe(self, name: str, digest: Digest) -> ManifestDesc:
        key = str(digest)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        desc = await self._describe(name, digest)
        self._cache[key] = desc
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return desc

    async def _doc(self, name: str, digest: Digest) -> tuple[str, dict[str, Any]]:
        media_type, body = await self.registry.manifests.get(name, digest)
        doc = json.loads(body)
        return media_type, doc if isinstance(doc, dict) else {}

    async def _config(self, doc: dict[str, Any]) -> dict[str, Any]:
        config = doc.get("config")
        if not isinstance(config, dict) or config.get("mediaType") not in IMAGE_CONFIGS:
            return {}
        try:
            digest = Digest.parse(str(config.get("digest", "")))
            size = await self.registry.blobs.size_global(digest)
            if size is None or size > _MAX_CONFIG:
                return {}
            loaded = json.loads(await self.registry.blobs.get_bytes(digest))
        except (DigestError, PathNotFound, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    async def _describe(self, name: str, digest: Digest) -> ManifestDesc:
        media_type, doc = await self._doc(name, digest)
        artifact = doc.get("artifactType") if isinstance(doc.get("artifactType"), str) else None
        if media_type not in mt.INDEXES:
            config = await self._config(doc)
            layers = _layers(doc)
            images = []
            if config.get("os") and config.get("architecture"):
                images.append(self._image(str(digest), config, sum(layers.values())))
            kind = "image" if config and not artifact else "artifact"
            return ManifestDesc(str(digest), media_type, kind, sum(layers.values()), images, artifact)
        images, every_layer = [], {}
        for child in doc.get("manifests") or []:
            if not isinstance(child, dict):
                continue
            raw = child.get("platform")
            platform: dict[str, Any] = raw if isinstance(raw, dict) else {}
            if not platform.get("os") or platform.get("os") == "unknown":  # attestations, not images
                continue
            try:
                child_digest = Digest.parse(str(child.get("digest", "")))
                _, child_doc = await self._doc(name, child_digest)
            except (RegistryError, DigestError, ValueError):
                continue
            layers = _layers(child_doc)
            every_layer.update(layers)
            images.append(self._image(str(child_digest), platform, sum(layers.values())))
        return ManifestDesc(str(digest), media_type, "image", sum(every_layer.values()), images, artifact)

    @staticmethod
    def _image(digest: str, platform: dict[str, Any], size: int) -> ImageDesc:
        return ImageDesc(
            digest=digest,
            os=str(platform.get("os", "")),
            architecture=str(platform.get("architecture", "")),
            variant=platform.get("variant") or None,
            os_version=platform.get("os.version") or None,
            os_features=_text(platform.get("os.features")),
            features=_text(platform.get("features")),
            size=size,
        )
