"""What the store holds, described for people: tag details, image inspection, disk usage.

Everything is derived from the store on demand (push time is the tag link's mtime), so it is
always current and needs no index.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.errors import PathNotFound, RegistryError
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError
from dockyard.storage import paths
from dockyard.storage.registry import Registry

_MAX_CONFIG = 4 * 1024 * 1024
_CONFIG_CACHE = 4096


@dataclass(slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    digest: str | None = None  # the child manifest, for indexes

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(slots=True)
class TagInfo:
    tag: str
    digest: str
    media_type: str
    size: int  # manifest(s) + configs + layers, each counted once
    platforms: list[Platform]
    pushed: float  # epoch seconds

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["platforms"] = [str(p) for p in self.platforms]
        return out


@dataclass(slots=True)
class RepoUsage:
    repository: str
    total: int = 0  # bytes of every blob the repository links, each once
    unique: int = 0  # of which no other repository links
    shared: int = 0
    blobs: int = 0


@dataclass(slots=True)
class Usage:
    repositories: list[RepoUsage] = field(default_factory=list)
    stored: int = 0  # bytes under blobs/, each blob once
    blobs: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "repositories": [asdict(r) for r in self.repositories],
            "stored": self.stored,
            "blobs": self.blobs,
        }


class Inventory:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._configs: OrderedDict[Digest, dict[str, Any]] = OrderedDict()

    async def _json_blob(self, digest: Digest) -> dict[str, Any]:
        cached = self._configs.get(digest)
        if cached is not None:
            return cached
        size = await self.registry.blobs.size_global(digest)
        if size is None or size > _MAX_CONFIG:
            return {}
        try:
            doc = json.loads(await self.registry.blobs.get_bytes(digest))
        except (PathNotFound, ValueError):
            return {}
        doc = doc if isinstance(doc, dict) else {}
        self._configs[digest] = doc
        if len(self._configs) > _CONFIG_CACHE:
            self._configs.popitem(last=False)
        return doc

    async def _manifest(self, name: str, digest: Digest) -> tuple[str, bytes, dict[str, Any]]:
        media_type, body = await self.registry.manifests.get(name, digest)
        doc = json.loads(body)
        return media_type, body, doc if isinstance(doc, dict) else {}

    async def _describe(self, name: str, digest: Digest) -> tuple[str, int, list[Platform]]:
        """(media type, size with every referenced blob once, platforms)."""
        media_type, body, doc = await self._manifest(name, digest)
        seen: dict[str, int] = {str(digest): len(body)}
        platforms: list[Platform] = []
        if media_type in mt.INDEXES:
            for child in doc.get("manifests") or []:
                try:
                    child_digest = Digest.parse(child["digest"])
                    _, child_body, child_doc = await self._manifest(name, child_digest)
                except (RegistryError, KeyError, TypeError, DigestError, ValueError):
                    continue
                seen[str(child_digest)] = len(child_body)
                self._blob_sizes(child_doc, seen)
                plat = child.get("platform") or {}
                if plat.get("os") and plat.get("architecture"):
                    platforms.append(
                        Platform(plat["os"], plat["architecture"], plat.get("variant"), str(child_digest))
                    )
        else:
            self._blob_sizes(doc, seen)
            config = await self._config_of(doc)
            if config.get("os") and config.get("architecture"):
                platforms.append(Platform(config["os"], config["architecture"], config.get("variant")))
        return media_type, sum(seen.values()), platforms

    @staticmethod
    def _blob_sizes(doc: dict[str, Any], seen: dict[str, int]) -> None:
        for desc in [doc.get("config"), *(doc.get("layers") or [])]:
            if (
                isinstance(desc, dict)
                and isinstance(desc.get("digest"), str)
                and isinstance(desc.get("size"), int)
            ):
                seen[desc["digest"]] = desc["size"]

    async def _config_of(self, doc: dict[str, Any]) -> dict[str, Any]:
        config = doc.get("config")
        if not isinstance(config, dict):
            return {}
        try:
            return await self._json_blob(Digest.parse(config.get("digest", "")))
        except DigestError:
            return {}

    async def tag(self, name: str, tag: str) -> TagInfo | None:
        digest = await self.registry.tags.resolve(name, tag)
        if digest is None:
            return None
        try:
            pushed = (await self.registry.driver.stat(paths.tag_current_link(name, tag))).mtime
            media_type, size, platforms = await self._describe(name, digest)
        except (PathNotFound, RegistryError):
            return None
        return TagInfo(tag, str(digest), media_type, size, platforms, pushed)

    async def tags(self, name: str) -> list[TagInfo]:
        if not await self.registry.repository_exists(name):
            raise RegistryError.name_unknown(name)
        infos = [await self.tag(name, t) for t in await self.registry.tags.names(name)]
        return [i for i in infos if i is not None]

    async def inspect(self, name: str, reference: str | Digest) -> dict[str, Any]:
        """Everything a person wants to know about one image or index."""
        digest = await self.registry.resolve(name, reference)
        media_type, body, doc = await self._manifest(name, digest)
        out: dict[str, Any] = {
            "repository": name,
            "digest": str(digest),
            "mediaType": media_type,
            "manifestSize": len(body),
            "tags": await self.registry.tags.tags_for(name, digest),
            "annotations": doc.get("annotations") or {},
        }
        if doc.get("artifactType"):
            out["artifactType"] = doc["artifactType"]
        if doc.get("subject"):
            out["subject"] = doc["subject"]
        _, out["size"], platforms = await self._describe(name, digest)
        out["platforms"] = [str(p) for p in platforms]
        if media_type in mt.INDEXES:
            out["manifests"] = [
                {
                    "digest": p.digest,
                    "platform": str(p),
                    **await self._image(name, Digest.parse(p.digest or "")),
                }
                for p in platforms
                if p.digest
            ]
        else:
            out.update(await self._image(name, digest))
        out["referrers"] = [d.to_json() for d in await self.registry.manifests.referrers(name, digest)]
        return out

    async def _image(self, name: str, digest: Digest) -> dict[str, Any]:
        try:
            _, _, doc = await self._manifest(name, digest)
        except RegistryError:
            return {}
        config = await self._config_of(doc)
        settings = config.get("config") or {}
        layers = [
            {"digest": d.get("digest"), "size": d.get("size"), "mediaType": d.get("mediaType")}
            for d in doc.get("layers") or []
            if isinstance(d, dict)
        ]
        return {
            "config": (doc.get("config") or {}).get("digest"),
            "layers": layers,
            "created": config.get("created"),
            "entrypoint": settings.get("Entrypoint"),
            "cmd": settings.get("Cmd"),
            "env": settings.get("Env") or [],
            "labels": settings.get("Labels") or {},
            "history": [
                {k: h[k] for k in ("created", "created_by", "empty_layer", "comment") if k in h}
                for h in config.get("history") or []
                if isinstance(h, dict)
            ],
        }

    async def usage(self, only: list[str] | None = None) -> Usage:
        """Bytes per repository: total (each blob once), unique to it, shared with others."""
        driver = self.registry.driver
        names = await self.registry.catalog.walk_repositories(include_without_manifests=True)
        linked: dict[str, set[Digest]] = {}
        holders: dict[Digest, int] = {}
        for name in names:
            digests = await self.registry.catalog.linked_digests(name)
            linked[name] = digests
            for d in digests:
                holders[d] = holders.get(d, 0) + 1
        sizes: dict[Digest, int] = {}
        for d in holders:
            size = await self.registry.blobs.size_global(d)
            if size is not None:
                sizes[d] = size
        result = Usage()
        for name in names:
            if only and name not in only:
                continue
            usage = RepoUsage(name)
            for d in linked[name]:
                size = sizes.get(d)
                if size is None:
                    continue
                usage.total += size
                usage.blobs += 1
                if holders[d] == 1:
                    usage.unique += size
                else:
                    usage.shared += size
            result.repositories.append(usage)
        stored = await driver.list_tree(paths.BLOBS)
        for rel, children in stored.items():
            if rel.count("/") == 2 and "data" in children:
                try:
                    info = await driver.stat(f"{paths.BLOBS}/{rel}/data")
                except PathNotFound:
                    continue
                result.stored += info.size
                result.blobs += 1
        return result
