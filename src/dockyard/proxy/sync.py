"""Mirroring ahead of time (``proxy.sync``): selected tags fetched on a schedule, so a cluster never
waits for them and an air-gapped site has them before the link goes down.

Each rule is one maintenance job (``proxy-sync-<n>``): the scheduler's lease makes one process of
one replica run it every ``interval``. A run lists each repository's tags at the upstream, keeps
those the rule selects, and pulls each through the cache the way a client would (the manifest; for
an index the images of the rule's platforms; every blob), through the same single-flight fills, so
a client pulling the same image meanwhile shares the fetch. Content already cached costs one
``HEAD`` per tag (after ``revalidate``) and nothing else. Each synced manifest is recorded as
referenced now, so ``ttl`` expiry keeps what a rule still selects.

Progress (tags done of total, manifests and blobs fetched, bytes) and the last run's result are
written to the store (``_dockyard/proxy-sync/rule-<n>.json``) while the run goes on, so the admin
API and the UI of every process and replica show them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dockyard.config import SyncRule
from dockyard.errors import DomainError, PathNotFound
from dockyard.oci.document import read_manifest
from dockyard.proxy.inflight import FillFailed
from dockyard.semver import matches, parse_range, parse_version
from dockyard.storage import paths
from dockyard.storage.liveness import revision_key

if TYPE_CHECKING:
    from dockyard.proxy.registry import ProxyRegistry

log = logging.getLogger("dockyard.proxy")
STATUS_DIR = f"{paths.ROOT}/_dockyard/proxy-sync"
PAGE = 1000


@dataclass(slots=True)
class Progress:
    state: str = "running"  # running, ok, failed (some tags failed), never
    started: float = 0.0
    finished: float | None = None
    tags_total: int = 0
    tags_done: int = 0
    manifests_fetched: int = 0
    blobs_fetched: int = 0
    bytes_fetched: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = self.errors[:20]
        return out


def select(rule: SyncRule, tags: list[str]) -> list[str]:
    """The tags a rule selects, in the order they are synced (highest version or name last)."""
    chosen = [t for t in tags if rule.tags is None or re.fullmatch(rule.tags, t)]
    if rule.semver is not None:
        spec = parse_range(rule.semver)
        chosen = [t for t in chosen if matches(t, spec)]
        chosen.sort(key=lambda t: (parse_version(t), t))
    else:
        chosen.sort()
    if rule.limit is not None:
        chosen = chosen[-rule.limit :]
    return chosen


class Syncer:
    """Runs the ``sync`` rules over a ``ProxyRegistry``; ``now`` is the coordinator's clock."""

    def __init__(self, proxy: ProxyRegistry, rules: list[SyncRule]) -> None:
        self.proxy = proxy
        self.rules = rules
        self.driver = proxy.inner.driver
        self.now: Callable[[], Awaitable[float]] = proxy.inner.coordinator.now

    def _path(self, index: int) -> str:
        return f"{STATUS_DIR}/rule-{index}.json"

    async def _save(self, index: int, progress: Progress, last: dict[str, Any] | None) -> None:
        body = {"current": progress.to_json() if progress.state == "running" else None}
        body["last"] = progress.to_json() if progress.state != "running" else last
        await self.driver.put_content(self._path(index), json.dumps(body).encode())

    async def _load(self, index: int) -> dict[str, Any]:
        try:
            data = json.loads(await self.driver.get_content(self._path(index)))
        except (PathNotFound, ValueError):
            return {"current": None, "last": None}
        return data if isinstance(data, dict) else {"current": None, "last": None}

    async def status(self) -> list[dict[str, Any]]:
        """Each rule with its progress (a run going on) and its last result."""
        out = []
        for index, rule in enumerate(self.rules):
            saved = await self._load(index)
            out.append(
                {
                    "rule": index,
                    "repositories": rule.repositories,
                    "tags": rule.tags,
                    "semver": rule.semver,
                    "platforms": rule.platforms,
                    "intervalSeconds": rule.interval,
                    "limit": rule.limit,
                    "current": saved.get("current"),
                    "last": saved.get("last"),
                }
            )
        return out

    async def run(self, index: int) -> Progress:
        """Run one rule now; its errors are recorded, not raised (a failing tag does not stop it)."""
        rule = self.rules[index]
        last = (await self._load(index)).get("last")
        progress = Progress(started=await self.now())
        await self._save(index, progress, last)
        for name in rule.repositories:
            try:
                tags = select(rule, await self._upstream_tags(name))
            except (DomainError, NotMirrored) as exc:
                progress.errors.append(f"{name}: {exc}")
                continue
            progress.tags_total += len(tags)
            await self._save(index, progress, last)
            for tag in tags:
                try:
                    await self._sync_tag(rule, name, tag, progress)
                except (DomainError, FillFailed, NotMirrored) as exc:
                    progress.errors.append(f"{name}:{tag}: {exc}")
                    log.warning("sync of %s:%s failed: %s", name, tag, exc)
                progress.tags_done += 1
                await self._save(index, progress, last)
        progress.state = "failed" if progress.errors else "ok"
        progress.finished = await self.now()
        await self._save(index, progress, last)
        log.info(
            "sync rule %d: %d tags, %d manifests and %d blobs fetched (%d bytes), %d errors",
            index,
            progress.tags_done,
            progress.manifests_fetched,
            progress.blobs_fetched,
            progress.bytes_fetched,
            len(progress.errors),
        )
        return progress

    async def _upstream_tags(self, name: str) -> list[str]:
        tags: list[str] = []
        last: str | None = None
        while True:
            page, more = await self.proxy.tags_page(name, PAGE, last)
            tags += page
            if not more or not page:
                return tags
            last = page[-1]

    async def _sync_tag(self, rule: SyncRule, name: str, tag: str, progress: Progress) -> None:
        proxy = self.proxy
        target = await proxy.target(name)
        if target is None:  # a hosted repository shadows the name: nothing to mirror
            raise NotMirrored(name)
        digest, fetched = await proxy.prefetch_manifest(name, tag)
        progress.manifests_fetched += fetched
        manifests = [digest]
        _, body = await proxy.inner.manifests.get(target.stored, digest)
        doc = read_manifest(body)
        allowed = rule.platforms or target.upstream.config.platforms
        for child in doc.manifests:
            if child.digest is None:
                continue
            platform = str(child.platform) if child.platform is not None and child.platform.known else None
            if allowed and platform is not None and platform not in allowed:
                continue
            _, fetched = await proxy.prefetch_manifest(name, child.digest)
            progress.manifests_fetched += fetched
            manifests.append(child.digest)
        for manifest in manifests[1:] if doc.manifests else manifests:
            _, body = await proxy.inner.manifests.get(target.stored, manifest)
            for ref in read_manifest(body).blobs:
                if ref.digest is None or ref.foreign:
                    continue
                size = await proxy.prefetch_blob(name, ref.digest)
                if size is not None:
                    progress.blobs_fetched += 1
                    progress.bytes_fetched += size
        await proxy.inner.coordinator.referenced([revision_key(target.stored, d) for d in manifests])


class NotMirrored(Exception):
    """A rule names a repository a hosted one of the same name shadows (``dockerhub`` names)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is a hosted repository here, not a mirrored one")
