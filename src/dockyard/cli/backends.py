"""Where the admin commands act: a running registry over HTTP, or a storage root directly.

Both answer the same calls with the same JSON shapes (the admin API's), so every command is
written once. Over HTTP, credentials go through :class:`RegistryAuth`, which answers Basic and
Bearer (token server) challenges the way ``docker login`` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote

import httpx

from dockyard.api.errors import to_api_error
from dockyard.app import create_services
from dockyard.auth.access import AllowAll
from dockyard.client import RegistryAuth
from dockyard.config import Config
from dockyard.errors import DomainError
from dockyard.oci.digest import Digest
from dockyard.proxy import CacheManager
from dockyard.storage import gc, retention

if TYPE_CHECKING:  # scanning loads only for the commands that scan
    from dockyard.scan import ScanService

T = TypeVar("T")


class CommandError(Exception):
    """A failure to report to the user; ``code`` is the process exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


NOT_FOUND = 4
REFUSED = 5


class Backend(Protocol):
    async def repositories(self) -> list[str]: ...
    async def tags(self, repository: str) -> dict[str, Any]: ...
    async def inspect(self, repository: str, reference: str) -> dict[str, Any]: ...
    async def delete(self, repository: str, reference: str, *, force: bool) -> None: ...
    async def delete_repository(self, repository: str) -> None: ...
    async def usage(self, repositories: list[str]) -> dict[str, Any]: ...
    async def gc(self, *, dry_run: bool, delete_untagged: bool) -> dict[str, Any]: ...
    async def retention(
        self, policies: list[dict[str, Any]], *, dry_run: bool, force: bool
    ) -> dict[str, Any]: ...
    async def cache_listing(self) -> dict[str, Any]: ...
    async def cache_purge(self, repositories: list[str] | None, *, dry_run: bool) -> dict[str, Any]:
        """Evict the images of ``repositories`` (globs); None: run expiry and the size limit."""
        ...

    async def scan(
        self, repository: str, reference: str, *, wait_seconds: float | None
    ) -> dict[str, Any]: ...
    async def vulnerabilities(
        self, repository: str, reference: str, minimum: str | None
    ) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def _scanned_since(status: dict[str, Any], queued: float) -> bool:
    result = status.get("result")
    return status.get("queued") is None and isinstance(result, dict) and result.get("finished", 0) >= queued


class HTTPBackend:
    def __init__(
        self, url: str, username: str | None, password: str | None, verify: bool | str = True
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            auth=RegistryAuth(username, password),
            timeout=httpx.Timeout(30, read=None),
            verify=verify,
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandError(f"cannot reach the registry at {self.client.base_url}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = "; ".join(e.get("message", e.get("code", "")) for e in response.json()["errors"])
            except (ValueError, KeyError, TypeError, AttributeError):
                message = response.text[:200] or response.reason_phrase
            code = (
                NOT_FOUND
                if response.status_code == 404
                else REFUSED
                if response.status_code in (403, 409)
                else 1
            )
            raise CommandError(f"{response.status_code}: {message}", code)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = (await self._call(method, path, **kwargs)).json()
        return body

    async def repositories(self) -> list[str]:
        names: list[str] = []
        path: str | None = "/v2/_catalog?n=1000"
        while path:
            response = await self._call("GET", path)
            names += response.json()["repositories"]
            link = response.headers.get("link")
            path = link.split(";")[0].strip("<> ") if link else None
        return names

    async def tags(self, repository: str) -> dict[str, Any]:
        return await self._json("GET", f"/admin/v1/repositories/{repository}/tags")

    async def inspect(self, repository: str, reference: str) -> dict[str, Any]:
        ref = quote(reference, safe=":")
        return await self._json("GET", f"/admin/v1/repositories/{repository}/manifests/{ref}")

    async def delete(self, repository: str, reference: str, *, force: bool) -> None:
        await self._call(
            "DELETE", f"/v2/{repository}/manifests/{reference}", params={"force": "true"} if force else None
        )

    async def delete_repository(self, repository: str) -> None:
        await self._call("DELETE", f"/admin/v1/repositories/{repository}")

    async def usage(self, repositories: list[str]) -> dict[str, Any]:
        return await self._json("GET", "/admin/v1/usage", params=[("repository", r) for r in repositories])

    async def gc(self, *, dry_run: bool, delete_untagged: bool) -> dict[str, Any]:
        body = {"dryRun": dry_run, "deleteUntagged": delete_untagged}
        return await self._json("POST", "/admin/v1/gc", json=body)

    async def retention(
        self, policies: list[dict[str, Any]], *, dry_run: bool, force: bool
    ) -> dict[str, Any]:
        body = {"dryRun": dry_run, "force": force, "policies": policies}
        return await self._json("POST", "/admin/v1/retention", json=body)

    async def cache_listing(self) -> dict[str, Any]:
        return await self._json("GET", "/admin/v1/proxy/cache")

    async def cache_purge(self, repositories: list[str] | None, *, dry_run: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"dryRun": dry_run}
        body.update({"repositories": repositories} if repositories is not None else {"expired": True})
        return await self._json("POST", "/admin/v1/proxy/cache/purge", json=body)

    async def scan(self, repository: str, reference: str, *, wait_seconds: float | None) -> dict[str, Any]:
        """Queue the image; with ``wait_seconds``, follow its status until a result newer than the queuing
        is there (polled once a second: the CLI waits on another process, it has nothing to await)."""
        queued = await self._json(
            "POST", "/admin/v1/scans", json={"repository": repository, "reference": reference}
        )
        digest = queued["queued"]["digest"]
        query = {"repository": repository, "reference": digest}
        status = await self._json("GET", "/admin/v1/scans", params=query)
        deadline = time.monotonic() + (wait_seconds or 0.0)
        while wait_seconds is not None and not _scanned_since(status, queued["queued"]["queued"]):
            if time.monotonic() > deadline:
                raise CommandError(f"not scanned within {wait_seconds:g} seconds (it stays queued)")
            await asyncio.sleep(1.0)
            status = await self._json("GET", "/admin/v1/scans", params=query)
        return status

    async def vulnerabilities(self, repository: str, reference: str, minimum: str | None) -> dict[str, Any]:
        path = f"/admin/v1/repositories/{repository}/vulnerabilities/{quote(reference, safe=':')}"
        return await self._json("GET", path, params={"severity": minimum} if minimum else None)

    async def close(self) -> None:
        await self.client.aclose()


class StoreBackend:
    """Acts on the storage directly (safe beside a running registry: the same locks apply)."""

    def __init__(self, config: Config, progress: gc.Progress | None = None) -> None:
        self.services = create_services(config, access=AllowAll())
        self.registry = self.services.registry
        self.inventory = self.services.inventory
        self.maintenance = self.services.maintenance
        self.config = config
        self.progress = progress

    @staticmethod
    def _reference(reference: str) -> str | Digest:
        return Digest.parse(reference) if ":" in reference else reference

    async def _guard(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except DomainError as exc:
            error = to_api_error(exc)  # the status and message the HTTP API would answer with
            code = NOT_FOUND if error.status == 404 else REFUSED if error.status in (403, 409) else 1
            raise CommandError(f"{error.status}: {error}", code) from None

    async def repositories(self) -> list[str]:
        return await self.registry.listing.repositories()

    async def tags(self, repository: str) -> dict[str, Any]:
        infos = await self._guard(self.inventory.tags(repository))
        return {"repository": repository, "tags": [i.to_json() for i in infos]}

    async def inspect(self, repository: str, reference: str) -> dict[str, Any]:
        return await self._guard(self.inventory.inspect(repository, self._reference(reference)))

    async def delete(self, repository: str, reference: str, *, force: bool) -> None:
        await self._guard(self.registry.delete_manifest(repository, self._reference(reference), force=force))

    async def delete_repository(self, repository: str) -> None:
        await self._guard(self.registry.delete_repository(repository))

    async def usage(self, repositories: list[str]) -> dict[str, Any]:
        usage = (await self.inventory.usage(repositories or None)).to_json()
        usage["quotas"] = await self.maintenance.quota_report()
        return usage

    async def gc(self, *, dry_run: bool, delete_untagged: bool) -> dict[str, Any]:
        options = gc.GCOptions(dry_run, delete_untagged, self.config.storage.maintenance.gc.grace)
        try:
            report = await self.maintenance.collect(options, self.progress)
        except gc.CollectionRunning as exc:
            raise CommandError(str(exc), REFUSED) from None
        return report.to_json()

    async def retention(
        self, policies: list[dict[str, Any]], *, dry_run: bool, force: bool
    ) -> dict[str, Any]:
        parsed = retention.parse_policies(policies)
        report = await self.maintenance.apply_retention(
            parsed,
            dry_run=dry_run,
            force=force,
            grace_seconds=self.config.storage.maintenance.gc.grace,
        )
        return report.to_json()

    def _cache(self) -> CacheManager:
        if self.services.proxy is None:
            raise CommandError("this configuration has no pull-through cache (proxy section)", NOT_FOUND)
        return self.services.proxy.cache

    async def cache_listing(self) -> dict[str, Any]:
        return await self._cache().listing()

    async def cache_purge(self, repositories: list[str] | None, *, dry_run: bool) -> dict[str, Any]:
        cache = self._cache()
        if repositories is None:
            report = await cache.maintain(dry_run=dry_run)
        else:
            report = await cache.purge(repositories, dry_run=dry_run)
        return report.to_json()

    async def scan(self, repository: str, reference: str, *, wait_seconds: float | None) -> dict[str, Any]:
        """Scan now, in this process (``wait_seconds`` is for a registry's queue)."""
        scans = self._scans()
        job = await self._guard(scans.request(repository, self._reference(reference)))
        if await scans.run(job) is None:
            raise CommandError("another scanner is scanning this image now", REFUSED)
        return await scans.status(repository, job.digest)

    def _scans(self) -> ScanService:
        """The registry's scanning service, or one over this configuration's storage and
        advisory database (scanning need not be enabled to scan or read from here)."""
        from dockyard.scan import create_queue, create_service

        return self.services.scans or create_service(
            self.config,
            self.registry,
            create_queue(self.config, self.services.driver, self.services.coordinator),
            self.services.vulndb,
        )

    async def vulnerabilities(self, repository: str, reference: str, minimum: str | None) -> dict[str, Any]:
        from dockyard.scan.report import at_least, vulnerability_report

        if minimum is not None:
            try:
                at_least(minimum)
            except ValueError as exc:
                raise CommandError(str(exc), 2) from None
        scans = self._scans()
        digest = await self._guard(self.registry.resolve(repository, self._reference(reference)))
        await self._guard(self.registry.manifests.get(repository, digest))
        return await vulnerability_report(self.registry, await scans.status(repository, str(digest)), minimum)

    async def close(self) -> None:
        # What the commands changed is queued for the webhooks and the audit log: written before
        # the command exits (the registry's sender delivers it).
        if self.services.notifier is not None:
            await self.services.notifier.spool.drain()
        if self.services.audit is not None:
            await self.services.audit.spool.drain()
        if self.services.proxy is not None:
            await self.services.proxy.close(0)
        await self.services.coordinator.close()
