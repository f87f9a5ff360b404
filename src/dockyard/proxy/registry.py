"""``ProxyRegistry``: the registry model with a pull-through cache in front of some repositories.

It implements ``storage.model.RegistryModel`` around ``storage.registry.Registry`` (the API's
handlers cannot tell), and for a repository bound to an upstream (``proxy.routing``):

* a manifest by digest is served from the cache, else fetched once (digests never change);
* a manifest by tag is served from the cache for ``revalidate`` seconds after the upstream last
  confirmed it; then a ``HEAD`` (which Docker Hub does not count against pull limits) asks again,
  and a moved tag is fetched and re-pointed. An index is cached whole; the manifests it lists and
  their blobs only when pulled (and, with a platform filter, only for those platforms);
* when the upstream is unreachable, answers 5xx or 429, or refuses our credentials, a cached tag
  is served anyway (stale-if-error) with a warning in the log; with nothing cached the client gets
  an OCI error naming the upstream and its answer;
* a blob is served from the cache, else filled from the upstream once (``proxy.inflight``);
* pushes are refused (``Mirrored``: DENIED); deletes evict from the cache (the next pull fetches
  again); the catalog lists cached repositories under their stored (prefixed) names.

When the upstream last confirmed a tag is shared by every worker and replica: a record in the
coordinator (``Coordinator.referenced``, keyed by repository, tag and digest, timed by the
coordinator's clock: the host's, or the database's across replicas), so N workers ask once per
interval, not N times. Each worker also remembers what it confirmed itself, which spares the
coordinator a look while that is fresh. Workers that find the record stale at the same moment
may each ask (a ``HEAD``; no lock is taken for it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING

from dockyard.errors import BlobUnknown, ManifestUnknown, Mirrored, UpstreamUnavailable
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.document import load
from dockyard.oci.manifest import Descriptor, ManifestError, parse_manifest
from dockyard.proxy.cache import CacheManager
from dockyard.proxy.inflight import Fills
from dockyard.proxy.routing import Router, Target
from dockyard.proxy.upstream import ManifestAnswer, NotUpstream, UpstreamFailed
from dockyard.storage.model import Admit, BlobSource, Chunks, PutResult, Visible
from dockyard.storage.registry import Registry

if TYPE_CHECKING:
    from dockyard.proxy.sync import Syncer

log = logging.getLogger("dockyard.proxy")

_MAX_VALIDATED = 65536  # (repository, tag) revalidation records a worker keeps


def revalidated_key(stored: str, tag: str, digest: Digest) -> str:
    """The coordinator record of when the upstream last said ``tag`` is ``digest``."""
    return f"proxy-revalidated:{stored}:{tag}@{digest}"


def _unavailable(target: Target, exc: UpstreamFailed) -> UpstreamUnavailable:
    return UpstreamUnavailable(target.upstream.url, exc.answer, throttled=exc.throttled)


def platform_of(descriptor: dict[str, object]) -> str | None:
    """``os/arch[/variant]`` of an index entry, or None when it names none."""
    platform = descriptor.get("platform")
    if not isinstance(platform, dict):
        return None
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    if not isinstance(parts[0], str) or not isinstance(parts[1], str):
        return None
    return "/".join(p for p in parts if isinstance(p, str) and p)


class ProxyRegistry:
    """``clock`` (monotonic seconds) times revalidation; tests step it instead of sleeping."""

    def __init__(
        self,
        inner: Registry,
        router: Router,
        fills: Fills,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache: CacheManager,
    ) -> None:
        self.inner = inner
        self.router = router
        self.fills = fills
        self.clock = clock
        self.cache = cache  # expiry, the size limit, purges
        self.manifests_fetched = 0  # manifests this worker fetched from upstreams (and stored)
        self.syncer: Syncer | None = None  # the ``sync`` rules (set by ``build_proxy``)
        self._validated: OrderedDict[tuple[str, str], tuple[float, Digest]] = OrderedDict()
        self._warming: asyncio.Task[None] | None = None

    # -- where a name goes ---------------------------------------------------------------------

    async def target(self, name: str) -> Target | None:
        """The upstream a read of ``name`` goes to, or None: a hosted repository."""
        found = self.router.prefixed(name)
        if found is not None:
            return found
        found = self.router.unprefixed(name)
        if found is None or await self.inner.repository_exists(name):
            return None
        return found

    def _writable(self, name: str, action: str) -> None:
        found = self.router.prefixed(name)
        if found is not None:
            raise Mirrored(name, found.upstream.url, action)

    # -- manifests -----------------------------------------------------------------------------

    async def pull_manifest(
        self, name: str, reference: str | Digest, *, head: bool, admit: Admit | None = None
    ) -> tuple[Digest, str, bytes]:
        target = await self.target(name)
        if target is None:
            return await self.inner.pull_manifest(name, reference, head=head, admit=admit)
        if isinstance(reference, Digest):
            await self._by_digest(name, target, reference)
        else:
            await self._by_tag(name, target, reference)
        return await self.inner.pull_manifest(target.stored, reference, head=head, admit=admit)

    async def _by_digest(self, name: str, target: Target, digest: Digest) -> None:
        if await self.inner.manifests.exists(target.stored, digest):
            return
        await self._check_platform(name, target, digest)
        try:
            answer = await target.upstream.manifest(target.remote, str(digest), head=False)
        except NotUpstream:
            raise ManifestUnknown(name, str(digest)) from None
        except UpstreamFailed as exc:
            raise _unavailable(target, exc) from None
        await self._store(target, answer, None)

    async def _fresh(self, target: Target, tag: str, cached: Digest) -> bool:
        """Whether the upstream said ``tag`` is ``cached`` within the ``revalidate`` interval: to
        this worker (remembered here), or to any worker or replica (the coordinator's record)."""
        interval = target.upstream.config.revalidate
        if interval <= 0:
            return False
        key, now = (target.stored, tag), self.clock()
        seen = self._validated.get(key)
        if seen is not None and seen[1] == cached and now - seen[0] < interval:
            return True
        coordinator = self.inner.coordinator
        [at] = await coordinator.last_referenced([revalidated_key(target.stored, tag, cached)])
        if at is None:
            return False
        age = await coordinator.now() - at
        if age >= interval:
            return False
        self._remember(key, now - max(age, 0.0), cached)
        return True

    def _remember(self, key: tuple[str, str], at: float, digest: Digest) -> None:
        self._validated[key] = (at, digest)
        self._validated.move_to_end(key)
        while len(self._validated) > _MAX_VALIDATED:
            self._validated.popitem(last=False)

    async def _by_tag(self, name: str, target: Target, tag: str) -> None:
        key = (target.stored, tag)
        cached = await self.inner.tags.resolve(target.stored, tag)
        if cached is not None and await self._fresh(target, tag, cached):
            return
        now = self.clock()
        upstream = target.upstream
        try:
            if cached is None:
                answer = await upstream.manifest(target.remote, tag, head=False)
            else:
                answer = await upstream.manifest(target.remote, tag, head=True)
                if answer.digest != cached:
                    log.info("tag %s:%s moved upstream to %s", target.stored, tag, answer.digest)
                    answer = await self._fetch_known(target, answer.digest)
        except NotUpstream:
            self._validated.pop(key, None)
            raise ManifestUnknown(name, tag) from None
        except UpstreamFailed as exc:
            if cached is None:
                raise _unavailable(target, exc) from None
            log.warning(
                "upstream %s failed (%s); serving the cached %s:%s (%s)",
                upstream.url,
                exc.answer,
                target.stored,
                tag,
                cached,
            )
            return
        if answer.digest != cached:
            await self._store(target, answer, tag)
        self._remember(key, now, answer.digest)
        coordinator = self.inner.coordinator
        await coordinator.referenced([revalidated_key(target.stored, tag, answer.digest)])
        if cached is not None and cached != answer.digest:  # the tag moved: its old record goes
            await coordinator.forget([revalidated_key(target.stored, tag, cached)])

    async def _fetch_known(self, target: Target, digest: Digest) -> ManifestAnswer:
        """The bytes of ``digest``: from the cache when it holds them (a tag moved back), else
        from the upstream by digest (verified)."""
        with suppress(ManifestUnknown):
            media_type, body = await self.inner.manifests.get(target.stored, digest)
            return ManifestAnswer(digest, media_type, len(body), body)
        return await target.upstream.manifest(target.remote, str(digest), head=False)

    async def _store(self, target: Target, answer: ManifestAnswer, tag: str | None) -> None:
        """Cache an upstream manifest (and point ``tag`` at it) without its blobs: they come when
        pulled. The bytes are kept exactly, so digests match the upstream's."""
        body = answer.body or b""
        known = mt.MANIFEST_TYPES | mt.SCHEMA1_TYPES
        try:
            manifest = parse_manifest(body, answer.media_type if answer.media_type in known else None)
        except ManifestError as exc:
            raise UpstreamUnavailable(
                target.upstream.url, f"it sent a manifest this registry cannot use: {exc}"
            ) from None
        await self.inner.put_mirrored_manifest(target.stored, answer.digest, body, manifest, tag)
        self.manifests_fetched += 1

    async def prefetch_manifest(self, name: str, reference: str | Digest) -> tuple[Digest, int]:
        """Cache a manifest the way a pull does (a tag is revalidated after ``revalidate``) without
        counting a pull (``proxy.sync``); its digest, and 1 if it was fetched now (else 0)."""
        target = await self.target(name)
        if target is None:
            raise ManifestUnknown(name, str(reference))
        before = self.manifests_fetched
        if isinstance(reference, Digest):
            await self._by_digest(name, target, reference)
            digest = reference
        else:
            await self._by_tag(name, target, reference)
            digest = await self.inner.resolve(target.stored, reference)
        return digest, self.manifests_fetched - before

    async def prefetch_blob(self, name: str, digest: Digest) -> int | None:
        """Cache a blob as a pull would (sharing a fill in progress); its size if it was read now,
        None if it was cached already."""
        target = await self.target(name)
        if target is None:
            raise BlobUnknown(name, str(digest))
        with suppress(BlobUnknown):
            await self.inner.stat_blob(target.stored, digest)
            return None
        source = await self.open_blob(name, digest)
        size = 0
        async for chunk in source.read():
            size += len(chunk)
        return size

    def upstream_of(self, name: str) -> str | None:
        """The URL of the upstream a stored repository mirrors, None for a hosted one."""
        target = self.router.prefixed(name)
        return target.upstream.url if target is not None else None

    async def _check_platform(self, name: str, target: Target, digest: Digest) -> None:
        """With a platform filter, a manifest an index lists only for other platforms is not
        fetched (a cluster of amd64 nodes never downloads arm64 images)."""
        allowed = target.upstream.config.platforms
        if not allowed:
            return
        platforms: list[str | None] = []
        for parent in await self.inner.referencing_indexes(target.stored, digest):
            _, body = await self.inner.manifests.get(target.stored, parent)
            doc = load(body) or {}
            entries = doc.get("manifests")
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("digest") == str(digest):
                    platforms.append(platform_of(entry))
        if platforms and not any(p is None or p in allowed for p in platforms):
            raise ManifestUnknown(name, str(digest))

    async def put_manifest(
        self,
        name: str,
        reference: str | Digest,
        body: bytes,
        content_type: str | None,
        *,
        tags: Sequence[str] = (),
    ) -> PutResult:
        self._writable(name, "a push")
        return await self.inner.put_manifest(name, reference, body, content_type, tags=tags)

    async def delete_manifest(self, name: str, reference: str | Digest, *, force: bool = False) -> None:
        target = self.router.prefixed(name)
        stored = target.stored if target is not None else name
        if isinstance(reference, str):
            self._validated.pop((stored, reference), None)
        await self.inner.delete_manifest(stored, reference, force=force)

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        """The upstream's tags (what a client pulling through the cache may ask for), or the
        cached ones when the upstream fails."""
        target = await self.target(name)
        if target is None:
            return await self.inner.tags_page(name, n, last)
        try:
            return await target.upstream.tags(target.remote, n, last)
        except NotUpstream:
            raise ManifestUnknown(name, "tags") from None
        except UpstreamFailed as exc:
            log.warning("upstream %s failed (%s); listing the cached tags", target.upstream.url, exc.answer)
            return await self.inner.tags_page(target.stored, n, last)

    async def referrers(self, name: str, subject: Digest) -> list[Descriptor]:
        target = await self.target(name)
        return await self.inner.referrers(target.stored if target else name, subject)

    # -- blobs ---------------------------------------------------------------------------------

    async def stat_blob(self, name: str, digest: Digest) -> int:
        target = await self.target(name)
        if target is None:
            return await self.inner.stat_blob(name, digest)
        with suppress(BlobUnknown):
            return await self.inner.stat_blob(target.stored, digest)
        try:
            return await target.upstream.blob_size(target.remote, digest)
        except NotUpstream:
            raise BlobUnknown(name, str(digest)) from None
        except UpstreamFailed as exc:
            raise _unavailable(target, exc) from None

    async def open_blob(self, name: str, digest: Digest) -> BlobSource:
        target = await self.target(name)
        if target is None:
            return await self.inner.open_blob(name, digest)
        with suppress(BlobUnknown):
            return await self.inner.open_blob(target.stored, digest)
        upstream = target.upstream
        try:
            if await self.inner.blobs.size_global(digest) is not None:
                # Stored for another repository: link it here once the upstream confirms this
                # repository has it (a digest alone must not reveal another repository's content).
                await upstream.blob_size(target.remote, digest)
                if await self.inner.mount_blob(target.stored, digest, None):
                    return await self.inner.open_blob(target.stored, digest)
            return await self.fills.open(
                target.stored,
                digest,
                lambda: upstream.blob(target.remote, digest),
                patience=upstream.config.timeout * 2,
            )
        except NotUpstream:
            raise BlobUnknown(name, str(digest)) from None
        except UpstreamFailed as exc:
            raise _unavailable(target, exc) from None

    async def delete_blob(self, name: str, digest: Digest) -> None:
        target = self.router.prefixed(name)
        await self.inner.delete_blob(target.stored if target is not None else name, digest)

    async def mount_blob(
        self, name: str, digest: Digest, source: str | None, visible: Visible = None
    ) -> bool:
        self._writable(name, "a push")
        return await self.inner.mount_blob(name, digest, source, visible)

    # -- uploads (hosted repositories only) ----------------------------------------------------

    async def push_blob(self, name: str, digest: Digest, chunks: Chunks, declared: int | None) -> int:
        self._writable(name, "a push")
        return await self.inner.push_blob(name, digest, chunks, declared)

    async def start_upload(self, name: str, algorithm: str = "sha256") -> str:
        self._writable(name, "a push")
        return await self.inner.start_upload(name, algorithm)

    async def append_upload(self, name: str, upload_id: str, chunks: Chunks, *, start: int | None) -> int:
        self._writable(name, "a push")
        return await self.inner.append_upload(name, upload_id, chunks, start=start)

    async def upload_status(self, name: str, upload_id: str) -> int:
        self._writable(name, "a push")
        return await self.inner.upload_status(name, upload_id)

    async def finish_upload(self, name: str, upload_id: str, digest: Digest, chunks: Chunks | None) -> int:
        self._writable(name, "a push")
        return await self.inner.finish_upload(name, upload_id, digest, chunks)

    async def cancel_upload(self, name: str, upload_id: str) -> None:
        self._writable(name, "a push")
        await self.inner.cancel_upload(name, upload_id)

    # -- repositories --------------------------------------------------------------------------

    async def catalog_page(self, n: int, last: str | None, visible: Visible) -> tuple[list[str], bool]:
        return await self.inner.catalog_page(n, last, visible)

    async def delete_repository(self, name: str) -> None:
        target = self.router.prefixed(name)
        stored = target.stored if target is not None else name
        for key in [k for k in self._validated if k[0] == stored]:
            del self._validated[key]
        await self.inner.delete_repository(stored)

    async def status(self) -> list[dict[str, object]]:
        """Each upstream as the admin API shows it: where it is, how it is cached, its last stated
        pull limit, and the repositories cached from it (never its credentials)."""
        names = await self.inner.listing.repositories()
        out: list[dict[str, object]] = []
        for upstream in self.router.upstreams:
            config, limit = upstream.config, upstream.ratelimit
            prefix = config.prefix
            cached = [n for n in names if not prefix or n.startswith(prefix + "/")]
            out.append(
                {
                    "prefix": prefix,
                    "remoteURL": upstream.url,
                    "dockerHub": config.dockerhub,
                    "credentials": config.credentials.username is not None,
                    "revalidateSeconds": config.revalidate,
                    "ttlSeconds": config.ttl,
                    "platforms": list(config.platforms),
                    "rateLimit": {"limit": limit.limit, "remaining": limit.remaining},
                    "tokensFetched": upstream.auth.token_requests,
                    "repositories": cached,
                }
            )
        return out

    def start(self) -> None:
        """At start: ready each upstream's blob client in the background (``BodyClient.warm``);
        serving does not wait for it."""
        self._warming = asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        for upstream in self.router.upstreams:
            try:
                await upstream.warm()
            except Exception as exc:  # only a head start: the first fill meets it for real
                log.debug("warming the client of %s failed: %s", upstream.url, exc)

    async def close(self, grace: float) -> None:
        """At shutdown: fills in flight get ``grace`` seconds, then the upstream clients close."""
        if self._warming is not None:
            self._warming.cancel()
            await asyncio.gather(self._warming, return_exceptions=True)
        await self.fills.close(grace)
        for upstream in self.router.upstreams:
            await upstream.close()
