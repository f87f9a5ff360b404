"""``GET /v2/`` and ``GET /v2/_catalog``."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from dockyard.api.context import Context
from dockyard.api.headers import next_link, parse_page_size

CATALOG_MAX = 1000
_EMPTY_OBJECT = b"{}"


async def api_version(ctx: Context) -> Response:
    # The same bytes and Content-Type JSONResponse({}) sends, without encoding them each time.
    return Response(_EMPTY_OBJECT, media_type="application/json")


async def catalog(ctx: Context) -> Response:
    query = ctx.request.query_params
    n, _ = parse_page_size(query.get("n"), default=CATALOG_MAX, maximum=CATALOG_MAX)
    assert n is not None
    last = query.get("last") or None
    visible = ctx.services.access.visible(ctx.identity)  # only what the caller may pull
    names, more = await ctx.model.catalog_page(n, last, visible)
    headers = {}
    if more and names:
        headers["Link"] = next_link(ctx.url("/v2/_catalog"), n, names[-1])
    return JSONResponse({"repositories": names}, headers=headers)
