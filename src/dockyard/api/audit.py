"""``GET /admin/v1/audit?repository=&actor=&action=&since=&limit=``: the audit log, filtered."""

from __future__ import annotations

import time

from starlette.responses import JSONResponse, Response

from dockyard.api.context import Context
from dockyard.audit.log import MAX_RESULTS, Query, since_param
from dockyard.errors import ErrorCode, RegistryError


async def query(ctx: Context) -> Response:
    """Matching records oldest first (``since``: RFC 3339 or a duration back such as ``24h``)."""
    audit = ctx.services.audit
    if audit is None:
        raise RegistryError(ErrorCode.UNSUPPORTED, "the audit log is off (audit.enabled)")
    params = ctx.request.query_params
    try:
        since = since_param(params.get("since"), time.time())
        limit = int(params.get("limit", "1000"))
    except ValueError:
        raise RegistryError(
            ErrorCode.QUERY_INVALID, "since is an RFC 3339 time or a duration like 24h; limit a number"
        ) from None
    if not 1 <= limit <= MAX_RESULTS:
        raise RegistryError(ErrorCode.PAGINATION_NUMBER_INVALID, f"limit is between 1 and {MAX_RESULTS}")
    found = await audit.query(
        Query(params.get("repository"), params.get("actor"), params.get("action"), since, limit)
    )
    return JSONResponse({"records": found})
