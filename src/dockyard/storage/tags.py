"""Tags: ``_manifests/tags/<tag>/current/link`` plus the tag's index of every digest it held."""

from __future__ import annotations

import asyncio

from dockyard.errors import PathNotFound
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.driver import StorageDriver
from dockyard.storage.links import read_link, write_link


class TagStore:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def resolve(self, name: str, tag: str) -> Digest | None:
        return await read_link(self.driver, paths.tag_current_link(name, tag))

    async def tag(self, name: str, tag: str, digest: Digest) -> None:
        await write_link(self.driver, paths.tag_index_link(name, tag, digest), digest)
        await write_link(self.driver, paths.tag_current_link(name, tag), digest)

    async def untag(self, name: str, tag: str) -> bool:
        try:
            await self.driver.delete(paths.tag_dir(name, tag))
        except PathNotFound:
            return False
        return True

    async def names(self, name: str) -> list[str]:
        """All tags of a repository in ASCII order; [] when it has none."""
        try:
            names = await self.driver.list(paths.tags_dir(name))
        except PathNotFound:
            return []
        return sorted(names)

    async def tags_for(self, name: str, digest: Digest) -> list[str]:
        tags = await self.names(name)
        targets = await asyncio.gather(*(self.resolve(name, t) for t in tags))
        return [t for t, d in zip(tags, targets, strict=True) if d == digest]
