"""Test data: blob files on disk (digests computed once), the on-disk layout shared by both
registries (catalog repositories, a repository with many tags, a small repository for the
request-rate figures) and the small images of the concurrent-push figure."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.testing.images import OCI_MANIFEST, Image, build_image

MiB = 1 << 20
ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"
SMALL_REPO = "bench/small"
TAGS_REPO = "bench/manytags"
CATALOG_PREFIX = "catalog"


@dataclass(frozen=True)
class BlobFile:
    path: Path
    size: int
    digest: str


def make_blob_file(path: Path, size: int, seed: int) -> BlobFile:
    """Pseudo-random content written in 8 MiB pieces and hashed once, here."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            chunk = rng.randbytes(min(8 * MiB, remaining))
            h.update(chunk)
            f.write(chunk)
            remaining -= len(chunk)
    return BlobFile(path, size, "sha256:" + h.hexdigest())


def blob_data_path(root: Path, digest: str) -> Path:
    """Where both registries keep a blob's bytes under a filesystem root (distribution's layout,
    as ``dockyard.storage.paths`` spells it)."""
    return root / paths.blob_data(Digest.parse(digest)).lstrip("/")


def make_image(index: int, repos: int = 64, layer_size: int = 4096) -> Image:
    rng = random.Random(1_000_000 + index)
    layers = [rng.randbytes(layer_size + rng.randrange(1024)) for _ in range(3)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": [f"IMAGE={index}"]},
    }
    return build_image(f"images/app{index % repos:02d}", f"v{index}", layers, config)


@dataclass(frozen=True)
class Layout:
    """What :func:`build_layout` wrote, for the figures that read it."""

    repos: list[str]
    tags: int
    manifest_digest: str
    layer_digest: str
    manifest: bytes


def _put(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def build_layout(base: Path, n_repos: int, n_tags: int) -> Layout:
    """Write ``docker/registry/v2`` under ``base`` directly, as both registries store it.

    Every repository gets the manifest's revision link, a ``_layers`` link for each blob of
    the image (distribution's catalog counts a directory holding ``_layers``, dockyard's one
    holding ``_manifests``) and ``tags/<tag>/current/link`` per tag.
    """
    v2 = f"{base}/docker/registry/v2"
    image = make_image(-1, layer_size=2048)
    layer_digest, _ = image.blobs[0]
    for digest, content in [*image.blobs, (image.manifest_digest, image.manifest)]:
        hexd = digest.split(":", 1)[1]
        _put(f"{v2}/blobs/sha256/{hexd[:2]}/{hexd}/data", content)
    mhex = image.manifest_digest.split(":", 1)[1]
    link = image.manifest_digest.encode()

    def repo(name: str, tags: list[str], layers: bool = False) -> None:
        r = f"{v2}/repositories/{name}"
        for digest, _content in image.blobs if layers else image.blobs[-1:]:
            _put(f"{r}/_layers/sha256/{digest.split(':', 1)[1]}/link", digest.encode())
        _put(f"{r}/_manifests/revisions/sha256/{mhex}/link", link)
        for tag in tags:
            _put(f"{r}/_manifests/tags/{tag}/current/link", link)

    names = [f"{CATALOG_PREFIX}/r{i:05d}" for i in range(n_repos)]
    for name in names:
        repo(name, ["latest"])
    repo(TAGS_REPO, [f"t{i:05d}" for i in range(n_tags)], layers=True)
    repo(SMALL_REPO, ["latest", "v1", "v2"], layers=True)
    return Layout(
        repos=sorted([*names, TAGS_REPO, SMALL_REPO]),
        tags=n_tags,
        manifest_digest=image.manifest_digest,
        layer_digest=layer_digest,
        manifest=image.manifest,
    )


def copy_tree(src: Path, dst: Path) -> None:
    """A fresh storage root: a plain copy (not hard links) of the template layout."""
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", f"{src}/.", str(dst)], check=True)
