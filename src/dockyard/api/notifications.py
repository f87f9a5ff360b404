"""``GET /admin/v1/notifications``: each webhook endpoint's queue and health."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from dockyard.api.context import Context


async def status(ctx: Context) -> Response:
    """Per endpoint: events waiting, failing or not, consecutive failures, last error and last
    success, delivered and dropped counts (``[]`` without endpoints)."""
    notifier = ctx.services.notifier
    return JSONResponse({"endpoints": await notifier.status() if notifier is not None else []})
