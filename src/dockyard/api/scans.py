"""The scan admin routes (registry:admin:*): queue an image's SBOMs on demand, and ask how its
scan went. 404 ``ROUTE_UNKNOWN`` when scanning is off (``scan.enabled``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from dockyard.api.admin import _json_body
from dockyard.api.context import Context
from dockyard.api.params import name_param, reference_param
from dockyard.errors import ErrorCode, RegistryError

if TYPE_CHECKING:  # scanning loads only in a worker that has it
    from dockyard.scan import ScanService


def _scans(ctx: Context) -> ScanService:
    scans = ctx.services.scans
    if scans is None:
        raise RegistryError(ErrorCode.ROUTE_UNKNOWN, "this registry does not scan images (scan.enabled)")
    return scans


def _target(values: dict[str, Any]) -> tuple[str, str]:
    repository, reference = values.get("repository"), values.get("reference")
    if not isinstance(repository, str) or not isinstance(reference, str):
        raise RegistryError(
            ErrorCode.UNSUPPORTED_BODY, 'give "repository" and "reference" (a tag or digest) as strings'
        )
    return name_param(repository, "repository"), reference


async def request_scan(ctx: Context) -> Response:
    """``POST /admin/v1/scans`` with ``{"repository": NAME, "reference": TAG|DIGEST}``: queue the
    image (every platform of an index); 202 with the queued job."""
    scans = _scans(ctx)
    repository, reference = _target(await _json_body(ctx))
    job = await scans.request(repository, reference_param(reference, for_write=False))
    return JSONResponse({"queued": job.to_json()}, status_code=202)


async def scan_status(ctx: Context) -> Response:
    """``GET /admin/v1/scans?repository=NAME&reference=TAG|DIGEST``: whether the image waits in
    the queue, and its last scan's result (each platform's SBOMs, or why none)."""
    scans = _scans(ctx)
    repository, reference = _target(dict(ctx.request.query_params))
    digest = await scans.registry.resolve(repository, reference_param(reference, for_write=False))
    return JSONResponse(await scans.status(repository, str(digest)))
