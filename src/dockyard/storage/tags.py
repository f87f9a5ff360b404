"""Tags: ``_manifests/tags/<tag>/current/link`` plus the tag's index of every digest it held."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Hashable

from dockyard.errors import PathNotFound
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.links import read_link

# A directory's listing is cached only once it has been unchanged this long: file timestamps
# tick with the kernel's coarse clock, so two changes within one tick can share an mtime.
QUIET_SECONDS = 1.0
_CACHE_MAX_TAGS = 1_000_000


class TagStore:
    """Tags of repositories; sorted tag lists are cached per process, revalidated by one stat."""

    def __init__(self, driver: CheckedDriver) -> None:
        self.driver = driver
        self._lists: OrderedDict[str, tuple[Hashable, list[str]]] = OrderedDict()
        self._cached_tags = 0

    async def resolve(self, name: str, tag: str) -> Digest | None:
        return await read_link(self.driver, paths.tag_current_link(name, tag))

    async def untag(self, name: str, tag: str) -> bool:
        try:
            await self.driver.delete(paths.tag_dir(name, tag))
        except PathNotFound:
            return False
        return True

    async def names(self, name: str) -> list[str]:
        """All tags of a repository in ASCII order; [] when it has none."""
        directory = paths.tags_dir(name)
        try:
            info = await self.driver.stat(directory)
        except PathNotFound:
            return []
        cached = self._lists.get(name)
        if cached is not None and info.token is not None and cached[0] == info.token:
            self._lists.move_to_end(name)
            return cached[1]
        try:
            tags = sorted(await self.driver.list_dir(directory))
        except PathNotFound:
            return []
        if info.token is not None and time.time() - info.mtime > QUIET_SECONDS:
            self._remember(name, info.token, tags)
        return tags

    def _remember(self, name: str, token: Hashable, tags: list[str]) -> None:
        old = self._lists.pop(name, None)
        if old is not None:
            self._cached_tags -= len(old[1])
        self._lists[name] = (token, tags)
        self._cached_tags += len(tags)
        while self._cached_tags > _CACHE_MAX_TAGS and len(self._lists) > 1:
            _, (_, dropped) = self._lists.popitem(last=False)
            self._cached_tags -= len(dropped)

    async def tags_for(self, name: str, digest: Digest) -> list[str]:
        tags = await self.names(name)
        targets = await asyncio.gather(*(self.resolve(name, t) for t in tags))
        return [t for t, d in zip(tags, targets, strict=True) if d == digest]
