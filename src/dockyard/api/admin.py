"""dockyard's admin API: garbage collection and repository deletion (needs registry:admin:*)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse, Response

from dockyard.api.blobs import deletes_enabled
from dockyard.api.context import Context
from dockyard.errors import ErrorCode, RegistryError
from dockyard.storage.gc import CollectionRunning, GCOptions, collect, last_report


async def _json_body(ctx: Context) -> dict[str, Any]:
    raw = await ctx.request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise RegistryError(ErrorCode.UNSUPPORTED_BODY, "the request body must be a JSON object") from None
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
    try:
        report = await collect(ctx.registry, options)
    except CollectionRunning as exc:
        raise RegistryError(ErrorCode.GC_RUNNING, str(exc)) from None
    return JSONResponse(report.to_json())


async def gc_status(ctx: Context) -> Response:
    """``GET /admin/v1/gc``: the last collection's report."""
    report = await last_report(ctx.registry)
    return JSONResponse({"last": report})


async def delete_repository(ctx: Context) -> Response:
    deletes_enabled(ctx)
    await ctx.registry.delete_repository(ctx.name)
    return Response(b"", 202, {"Content-Length": "0"})
