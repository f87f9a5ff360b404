"""Small OCI images built in memory, for pushing in bulk: the benchmark's concurrent-push figure
and the live GC-versus-push stress test build theirs here, so both push the same shape of image.

An image is its layers, then its config (the order a client uploads them in), and a compact OCI
manifest naming them. Nothing is random unless the caller's bytes are: the same inputs give the
same digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact_json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Image:
    repo: str
    tag: str
    blobs: tuple[tuple[str, bytes], ...]  # (digest, content): the layers, then the config
    manifest: bytes
    manifest_digest: str

    @property
    def contents(self) -> dict[str, bytes]:
        """Every blob by digest (a layer shared twice appears once)."""
        return dict(self.blobs)


def build_image(repo: str, tag: str, layers: Sequence[bytes], config: dict[str, Any]) -> Image:
    """An image of ``layers`` (uncompressed tar media type) and the config ``config`` (its
    ``rootfs.diff_ids`` filled in with the layers' digests unless given)."""
    layer_digests = [sha256(x) for x in layers]
    config = {**config, "rootfs": config.get("rootfs", {"type": "layers", "diff_ids": layer_digests})}
    config_bytes = compact_json(config)
    manifest = compact_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config_bytes), "size": len(config_bytes)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": d, "size": len(x)}
                for d, x in zip(layer_digests, layers, strict=True)
            ],
        }
    )
    blobs = (*zip(layer_digests, layers, strict=True), (sha256(config_bytes), config_bytes))
    return Image(repo, tag, blobs, manifest, sha256(manifest))
