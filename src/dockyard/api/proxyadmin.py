"""The pull-through cache's admin routes (registry:admin:*): what it holds, purges and eviction
(``dockyard cache ls|purge``), and the progress of the ``sync`` rules. 404 without a cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response

from dockyard.api.admin import _flag, _json_body
from dockyard.api.context import Context
from dockyard.errors import ErrorCode, RegistryError

if TYPE_CHECKING:  # httpx and the cache load only in a worker that has one
    from dockyard.proxy import ProxyRegistry


def _proxy(ctx: Context) -> ProxyRegistry:
    proxy = ctx.services.proxy
    if proxy is None:
        raise RegistryError(
            ErrorCode.ROUTE_UNKNOWN, "this registry has no pull-through cache (proxy section)"
        )
    return proxy


async def cache_listing(ctx: Context) -> Response:
    """``GET /admin/v1/proxy/cache``: every cached image (repository, tags, upstream, bytes, when
    cached and last pulled, when it expires), most recently used first, and the totals."""
    return JSONResponse(await _proxy(ctx).cache.listing())


async def cache_purge(ctx: Context) -> Response:
    """``POST /admin/v1/proxy/cache/purge`` with ``{"repositories": [glob, ...]}`` (evict those
    repositories' images) or ``{"expired": true}`` (run the scheduled expiry and size limit now),
    and ``"dryRun"``: the report of what was (or would be) evicted and the bytes freed."""
    proxy = _proxy(ctx)
    body = await _json_body(ctx)
    dry_run = _flag(body, "dryRun", False)
    expired = _flag(body, "expired", False)
    if ctx.services.config.storage.maintenance.readonly.enabled and not dry_run:
        raise RegistryError(ErrorCode.UNSUPPORTED, "the registry is read-only: only a dry run is possible")
    patterns = body.get("repositories")
    if expired == (patterns is not None):
        raise RegistryError(
            ErrorCode.UNSUPPORTED_BODY, 'give either "repositories" (a list of globs) or "expired": true'
        )
    if expired:
        report = await proxy.cache.maintain(dry_run=dry_run)
    else:
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            raise RegistryError(ErrorCode.UNSUPPORTED_BODY, "repositories must be a list of globs")
        report = await proxy.cache.purge(patterns, dry_run=dry_run)
    return JSONResponse(report.to_json())


async def sync_status(ctx: Context) -> Response:
    """``GET /admin/v1/proxy/sync``: each ``sync`` rule, the run going on (tags done of total,
    what was fetched) and the last run's result."""
    syncer = _proxy(ctx).syncer
    return JSONResponse({"rules": await syncer.status() if syncer is not None else []})
