"""What the store holds, described for people: tag details, image inspection, disk usage.

Everything is derived from the store on demand (push time is the tag link's mtime), so it is
always current and needs no index. Manifests and configs are read with the tolerant reader
(:mod:`dockyard.oci.document`), so odd content shows as "unknown" instead of failing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.errors import DomainError, NameUnknown, PathNotFound
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.document import MAX_DOCUMENT, ManifestDoc, as_text, load, read_manifest
from dockyard.storage import paths
from dockyard.storage.configs import ConfigReader
from dockyard.storage.linked import linked_sizes, repositories
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.inventory")


@dataclass(slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    digest: str | None = None  # the child manifest, for indexes
    missing: bool = False  # a child a sparse index names that the repository does not have

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def label(self) -> str:
        return f"{self} (missing)" if self.missing else str(self)


@dataclass(slots=True)
class TagInfo:
    tag: str
    digest: str
    media_type: str
    size: int  # manifest(s) + configs + layers, each counted once
    platforms: list[Platform]
    pushed: float  # epoch seconds
    error: str | None = None  # set (and shown) only when the tag could not be described

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["platforms"] = [p.label for p in self.platforms]
        if self.error is None:
            del out["error"]
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
        self.configs = ConfigReader(registry.blobs)

    async def _manifest(self, name: str, digest: Digest) -> tuple[str, bytes, ManifestDoc]:
        media_type, body = await self.registry.manifests.get(name, digest)
        return media_type, body, read_manifest(body)

    async def _describe(self, name: str, digest: Digest) -> tuple[str, int, list[Platform]]:
        """(media type, size with every referenced blob once, platforms)."""
        media_type, body, doc = await self._manifest(name, digest)
        seen: dict[str, int] = {str(digest): len(body)}
        platforms: list[Platform] = []
        if media_type in mt.INDEXES:
            for child in doc.manifests:
                if child.digest is None:
                    continue
                plat = child.platform
                known = plat is not None and plat.known
                try:
                    _, child_body, child_doc = await self._manifest(name, child.digest)
                except DomainError:  # a child a sparse index names, absent here: shown as missing
                    if plat is not None and known:
                        platforms.append(
                            Platform(plat.os, plat.architecture, plat.variant, str(child.digest), True)
                        )
                    continue
                seen[str(child.digest)] = len(child_body)
                self._blob_sizes(child_doc, seen)
                if plat is not None and known:
                    platforms.append(Platform(plat.os, plat.architecture, plat.variant, str(child.digest)))
        else:
            self._blob_sizes(doc, seen)
            config = (await self.configs.read(doc.config)).platform
            if config.known:
                platforms.append(Platform(config.os, config.architecture, config.variant))
        return media_type, sum(seen.values()), platforms

    @staticmethod
    def _blob_sizes(doc: ManifestDoc, seen: dict[str, int]) -> None:
        for desc in doc.blobs:
            if desc.digest is not None and desc.size is not None:
                seen[str(desc.digest)] = desc.size

    async def tag(self, name: str, tag: str) -> TagInfo | None:
        digest = await self.registry.tags.resolve(name, tag)
        if digest is None:
            return None
        try:
            pushed = (await self.registry.driver.stat(paths.tag_current_link(name, tag))).mtime
            media_type, size, platforms = await self._describe(name, digest)
        except (PathNotFound, DomainError):
            return None
        return TagInfo(tag, str(digest), media_type, size, platforms, pushed)

    async def tags(self, name: str) -> list[TagInfo]:
        if not await self.registry.repository_exists(name):
            raise NameUnknown(name)
        infos = [await self._safe_tag(name, t) for t in await self.registry.tags.names(name)]
        return [i for i in infos if i is not None]

    async def _safe_tag(self, name: str, tag: str) -> TagInfo | None:
        """One tag of a listing; an unexpected error marks its entry instead of failing the list."""
        try:
            return await self.tag(name, tag)
        except Exception:
            log.exception("cannot describe a tag", extra={"repository": name, "tag": tag})
            return TagInfo(tag, "", "", 0, [], 0.0, error="unreadable")

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
            "annotations": doc.annotations,
        }
        if doc.artifact_type:
            out["artifactType"] = doc.artifact_type
        if doc.subject_raw and doc.subject is not None and doc.subject.digest is not None:
            out["subject"] = doc.subject_raw
        _, out["size"], platforms = await self._describe(name, digest)
        out["platforms"] = [p.label for p in platforms]
        if media_type in mt.INDEXES:
            out["manifests"] = [
                {
                    "digest": p.digest,
                    "platform": str(p),
                    **(
                        {"missing": True}
                        if p.missing
                        else await self._image(name, Digest.parse(p.digest or ""))
                    ),
                }
                for p in platforms
                if p.digest
            ]
            children = [c.digest for c in doc.manifests if c.digest is not None]
            absent = await self.registry.absent(name, [], children)
        else:
            blobs = [b.digest for b in doc.blobs if b.digest is not None and not b.foreign]
            absent = await self.registry.absent(name, blobs, [])
            out.update(await self._image(name, digest, absent))
        # What this manifest references that the repository does not have (a sparse push).
        out["missing"] = sorted(str(d) for d in absent)
        out["referrers"] = [d.to_json() for d in await self.registry.manifests.referrers(name, digest)]
        return out

    async def _image(self, name: str, digest: Digest, absent: set[Digest] | None = None) -> dict[str, Any]:
        try:
            _, _, doc = await self._manifest(name, digest)
        except DomainError:
            return {}
        if absent is None:
            blobs = [b.digest for b in doc.blobs if b.digest is not None and not b.foreign]
            absent = await self.registry.absent(name, blobs, [])
        chart = await self._chart(doc)
        config = await self.configs.read(doc.config)
        layers = [
            {
                "digest": str(d.digest) if d.digest is not None else None,
                "size": d.size or 0,
                "mediaType": d.media_type or None,
                **({"missing": True} if d.digest in absent else {}),
            }
            for d in doc.layers
        ]
        return {
            "config": str(doc.config.digest) if doc.config and doc.config.digest else None,
            "layers": layers,
            "created": config.created,
            "entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
            "cmd": list(config.cmd) if config.cmd is not None else None,
            "env": list(config.env),
            "labels": config.labels,
            "history": [h.to_json() for h in config.history],
            **({"chart": chart} if chart is not None else {}),
        }

    async def _chart(self, doc: ManifestDoc) -> dict[str, str] | None:
        """A Helm chart's name, version, appVersion and description from its config blob (the
        Chart.yaml `helm push` stores as JSON); None for anything that is not a chart, and only
        what reads as text for a chart whose config is odd or too large to read."""
        ref = doc.config
        if ref is None or ref.media_type != mt.HELM_CONFIG:
            return None
        raw: dict[str, Any] | None = None
        if ref.digest is not None and ref.size is not None and ref.size <= MAX_DOCUMENT:
            try:
                raw = load(await self.registry.blobs.get_bytes(ref.digest))
            except (DomainError, PathNotFound):
                raw = None
        raw = raw or {}
        keys = ("name", "version", "appVersion", "description")
        return {k: as_text(raw[k]) for k in keys if isinstance(raw.get(k), str)}

    async def usage(self, only: list[str] | None = None) -> Usage:
        """Bytes per repository: total (each blob once), unique to it, shared with others."""
        driver = self.registry.driver
        names = await repositories(driver, include_without_manifests=True)
        linked = await linked_sizes(driver, names)
        holders: dict[Digest, int] = {}
        for sizes in linked.values():
            for d in sizes:
                holders[d] = holders.get(d, 0) + 1
        result = Usage()
        for name in names:
            if only and name not in only:
                continue
            usage = RepoUsage(name)
            for d, size in linked[name].items():
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
