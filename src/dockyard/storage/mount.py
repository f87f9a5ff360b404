"""Automatic blob mounts (``POST ?mount=<digest>`` without ``from``) under access control: mount only
from a repository the caller may pull, so a mount cannot reveal content of a private repository."""

from __future__ import annotations

from collections.abc import Callable

from dockyard.oci.digest import Digest
from dockyard.storage.registry import Registry


async def mount_source(registry: Registry, digest: Digest, visible: Callable[[str], bool]) -> str | None:
    """A repository the caller may pull that links ``digest``, or None (then upload normally)."""
    if await registry.blobs.size_global(digest) is None:
        return None
    for name in await registry.catalog.walk_repositories(include_without_manifests=True):
        if visible(name) and await registry.blobs.is_linked(name, digest):
            return name
    return None
