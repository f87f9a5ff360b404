"""dockyard's admin API (every route needs registry:admin:*): garbage collection, repository
deletion, retention, tag details, image inspection, disk usage, quotas and the pull-through
cache's upstreams."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from dockyard.api.blobs import deletes_enabled
from dockyard.api.context import Context
from dockyard.api.params import reference_param
from dockyard.errors import ErrorCode, RegistryError
from dockyard.oci.document import DocumentError, load_strict
from dockyard.storage.gc import GCOptions
from dockyard.storage.retention import Policy, parse_policies, policy_from_config


async def _json_body(ctx: Context) -> dict[str, Any]:
    raw = await ctx.request.body()
    if not raw:
        return {}
    try:
        body = load_strict(raw, "the request body")
    except DocumentError as exc:
        raise RegistryError(ErrorCode.UNSUPPORTED_BODY, f"{exc}; it must be a JSON object") from None
    if not isinstance(body, dict):
        raise RegistryError(ErrorCode.UNSUPPORTED_BODY, "the request body must be a JSON object")
    return body


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise RegistryError(ErrorCode.UNSUPPORTED_BODY, f"{key} must be true or false")
    return value


async def run_gc(ctx: Context) -> Response:
    """``POST /admin/v1/gc`` with ``{"dryRun": bool, "deleteUntagged": bool}``: run now, report."""
    body = await _json_body(ctx)
    settings = ctx.services.config.storage.maintenance.gc
    dry_run = _flag(body, "dryRun", False)
    if ctx.services.config.storage.maintenance.readonly.enabled and not dry_run:
        raise RegistryError(ErrorCode.UNSUPPORTED, "the registry is read-only: only a dry run is possible")
    options = GCOptions(
        dry_run=dry_run,
        delete_untagged=_flag(body, "deleteUntagged", settings.deleteuntagged),
        grace_seconds=settings.grace,
    )
    report = await ctx.services.maintenance.collect(options)  # GCRunning when another runs: 409 GC_RUNNING
    return JSONResponse(report.to_json())


async def gc_status(ctx: Context) -> Response:
    """``GET /admin/v1/gc``: the last collection's report."""
    report = await ctx.services.maintenance.last_collection()
    return JSONResponse({"last": report})


async def delete_repository(ctx: Context) -> Response:
    deletes_enabled(ctx)
    await ctx.model.delete_repository(ctx.name)
    return Response(b"", 202, {"Content-Length": "0"})


async def tag_details(ctx: Context) -> Response:
    """``GET /admin/v1/repositories/<name>/tags``: digest, size, platforms and push time per tag."""
    infos = await ctx.services.inventory.tags(ctx.name)
    return JSONResponse({"repository": ctx.name, "tags": [i.to_json() for i in infos]})


async def inspect(ctx: Context) -> Response:
    reference = reference_param(ctx.params["reference"], for_write=False)
    return JSONResponse(await ctx.services.inventory.inspect(ctx.name, reference))


async def usage(ctx: Context) -> Response:
    """``GET /admin/v1/usage[?repository=NAME]``: bytes per repository (total, unique, shared)."""
    only = ctx.request.query_params.getlist("repository") or None
    usage = (await ctx.services.inventory.usage(only)).to_json()
    usage["quotas"] = await ctx.services.maintenance.quota_report()
    return JSONResponse(usage)


async def quotas(ctx: Context) -> Response:
    return JSONResponse({"quotas": await ctx.services.maintenance.quota_report()})


def _policies_from(body: dict[str, Any], ctx: Context) -> list[Policy]:
    raw = body.get("policies")
    if raw is None:
        return [policy_from_config(p) for p in ctx.services.config.retention.policies]
    if not isinstance(raw, list):
        raise RegistryError(ErrorCode.UNSUPPORTED_BODY, "policies must be a list")
    try:
        return parse_policies(raw)
    except (ValidationError, ValueError) as exc:
        raise RegistryError(ErrorCode.UNSUPPORTED_BODY, f"invalid policy: {exc}") from None


async def run_retention(ctx: Context) -> Response:
    """``POST /admin/v1/retention`` with ``{"dryRun", "force", "policies"?}`` (default: configured)."""
    body = await _json_body(ctx)
    dry_run = _flag(body, "dryRun", False)
    if ctx.services.config.storage.maintenance.readonly.enabled and not dry_run:
        raise RegistryError(ErrorCode.UNSUPPORTED, "the registry is read-only: only a dry run is possible")
    policies = _policies_from(body, ctx)
    report = await ctx.services.maintenance.apply_retention(
        policies,
        dry_run=dry_run,
        force=_flag(body, "force", ctx.services.config.retention.force),
        grace_seconds=ctx.services.config.storage.maintenance.gc.grace,
    )
    return JSONResponse(report.to_json())


async def proxy_status(ctx: Context) -> Response:
    """``GET /admin/v1/proxy``: the pull-through cache's upstreams (prefix, URL, revalidation, the
    last rate-limit headers they sent, the repositories cached from each); 404 without one."""
    proxy = ctx.services.proxy
    if proxy is None:
        raise RegistryError(
            ErrorCode.ROUTE_UNKNOWN, "this registry has no pull-through cache (proxy section)"
        )
    return JSONResponse({"upstreams": await proxy.status()})


async def vulndb_status(ctx: Context) -> Response:
    """``GET /admin/v1/vulndb``: the advisory database's counts per ecosystem and its latest
    imports (time, seconds, records added, updated, unchanged, withdrawn, invalid)."""
    store = ctx.services.vulndb
    if store is None:
        raise RegistryError(
            ErrorCode.ROUTE_UNKNOWN,
            "this registry keeps no advisory database (set vulndb.path or database.dsn)",
        )
    return JSONResponse(await store.status())
