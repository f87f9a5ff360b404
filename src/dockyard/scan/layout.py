"""One image of the store as an OCI image layout directory, the input Syft reads (``oci-dir:``).

Why a layout and not Syft's registry source against dockyard itself: the layout needs no
credentials (no internal account to mint, nothing that could leak or be refused by an access
rule), no HTTP round trips through the workers that serve clients, no pull events (a scan is
not a pull: pull times and counts stay the clients'), and it works the same in read-only mode
and behind any auth mode. On the filesystem driver the layout costs nothing: its blobs are
symbolic links to the store's own ``data`` files (Syft only reads them); on other drivers
(S3) each blob is streamed into the directory once, and the directory is removed after the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio

from dockyard.oci.digest import Digest
from dockyard.oci.document import read_manifest
from dockyard.storage.registry import Registry

LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'


def blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex


async def _place(registry: Registry, name: str, digest: Digest, root: Path) -> int:
    """Make ``digest``'s bytes appear in the layout: a link to the stored file when there is one,
    else a streamed copy. Returns the blob's size."""
    source = await registry.open_blob(name, digest)
    target = blob_path(root, digest)
    if target.exists():
        return source.size
    target.parent.mkdir(parents=True, exist_ok=True)
    local = source.local_path()
    if local is not None:
        os.symlink(local, target)
        return source.size
    async with await anyio.open_file(target, "wb") as out:
        async for chunk in source.read():
            await out.write(chunk)
    return source.size


async def write_layout(registry: Registry, name: str, digest: Digest, root: Path) -> int:
    """Write image ``digest`` of repository ``name`` (a single-platform manifest) as a layout in
    the empty directory ``root``. Returns the bytes of its layers (what Syft will read)."""
    media_type, body = await registry.manifests.get(name, digest)
    doc = read_manifest(body)
    (root / "blobs" / digest.algorithm).mkdir(parents=True, exist_ok=True)
    blob_path(root, digest).write_bytes(body)
    layer_bytes = 0
    if doc.config is not None and doc.config.digest is not None:
        await _place(registry, name, doc.config.digest, root)
    for layer in doc.layers:
        if layer.digest is not None:
            layer_bytes += await _place(registry, name, layer.digest, root)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": media_type, "digest": str(digest), "size": len(body)}],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_bytes(LAYOUT_VERSION)
    return layer_bytes
