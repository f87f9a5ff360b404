"""``GET /v2/<name>/tags/list`` with ``n``/``last`` pagination and a ``Link`` header."""

from __future__ import annotations

import bisect

from starlette.responses import JSONResponse, Response

from dockyard.api.context import Context
from dockyard.api.headers import next_link, parse_page_size
from dockyard.errors import NameUnknown

TAGS_MAX = 10000


async def list_tags(ctx: Context) -> Response:
    query = ctx.request.query_params
    n, _ = parse_page_size(query.get("n"), default=None, maximum=TAGS_MAX)
    last = query.get("last") or None
    name = ctx.name
    tags = await ctx.registry.tags.names(name)
    if not tags and not await ctx.registry.repository_exists(name):
        raise NameUnknown(name)
    start = bisect.bisect_right(tags, last) if last is not None else 0
    end = len(tags) if n is None else start + n
    page = tags[start:end]
    headers = {}
    if n and end < len(tags) and page:
        headers["Link"] = next_link(ctx.url(f"/v2/{name}/tags/list"), n, page[-1])
    return JSONResponse({"name": name, "tags": page}, headers=headers)
