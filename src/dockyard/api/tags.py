"""``GET /v2/<name>/tags/list`` with ``n``/``last`` pagination and a ``Link`` header."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from dockyard.api.context import Context
from dockyard.api.headers import next_link, parse_page_size

TAGS_MAX = 10000


async def list_tags(ctx: Context) -> Response:
    query = ctx.request.query_params
    n, _ = parse_page_size(query.get("n"), default=None, maximum=TAGS_MAX)
    last = query.get("last") or None
    name = ctx.name
    page, more = await ctx.model.tags_page(name, n, last)
    headers = {}
    if n and more and page:
        headers["Link"] = next_link(ctx.url(f"/v2/{name}/tags/list"), n, page[-1])
    return JSONResponse({"name": name, "tags": page}, headers=headers)
