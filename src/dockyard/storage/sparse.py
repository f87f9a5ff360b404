"""Which references of a pushed manifest must already be in the repository (``validation``).

By default every one: an image's config and layers, an index's child manifests (400
``MANIFEST_BLOB_UNKNOWN`` per missing one, as distribution answers). A registry that mirrors only
some platforms accepts indexes whose other children are absent (distribution 3's
``validation.manifests.indexes.platforms``: ``none``, or ``list`` with ``platformlist``), and
``validation.manifests.images.sparse`` accepts images whose blobs are not all there. What such a
push leaves out is *missing*, not an error: GC, the Hub API, the UI and inspection show it so.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.config import Validation
from dockyard.oci.manifest import Descriptor, Manifest


@dataclass(frozen=True, slots=True)
class Presence:
    image_blobs: bool = True  # an image's config and layers must be in the repository
    index_children: str = "all"  # "all", "none" or "list"
    platforms: frozenset[tuple[str, str]] = frozenset()  # (os, architecture) checked with "list"

    @classmethod
    def from_config(cls, validation: Validation) -> Presence:
        manifests = validation.manifests
        indexes = manifests.indexes
        return cls(
            image_blobs=not manifests.images.sparse,
            index_children=indexes.platforms,
            platforms=frozenset((p.os, p.architecture) for p in indexes.platformlist),
        )

    def blobs(self, manifest: Manifest) -> list[Descriptor]:
        """The blobs ``manifest`` needs present."""
        return manifest.required_blobs() if self.image_blobs else []

    def children(self, manifest: Manifest) -> list[Descriptor]:
        """The child manifests ``manifest`` needs present (distribution's rule: with ``list``, a
        child is checked when its platform's os and architecture are listed)."""
        if self.index_children == "none":
            return []
        if self.index_children == "all":
            return list(manifest.manifests)
        return [d for d in manifest.manifests if _platform(d) in self.platforms]


def _platform(descriptor: Descriptor) -> tuple[str, str] | None:
    platform = descriptor.platform or {}
    os, architecture = platform.get("os"), platform.get("architecture")
    return (os, architecture) if isinstance(os, str) and isinstance(architecture, str) else None
