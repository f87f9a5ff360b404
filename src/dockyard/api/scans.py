"""The scan admin routes (registry:admin:*): queue an image's SBOMs on demand, ask how its scan
went, and read its vulnerabilities (``scan.report``). 404 ``ROUTE_UNKNOWN`` when scanning is off
(``scan.enabled``)."""

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


async def vulnerabilities(ctx: Context) -> Response:
    """``GET /admin/v1/repositories/<name>/vulnerabilities/<reference>[?severity=LEVEL]``: the
    image's findings from its last scan (every platform of an index), worst first, with counts
    by severity; ``severity`` keeps only findings at or above it."""
    from dockyard.scan.report import at_least, vulnerability_report

    scans = _scans(ctx)
    minimum = ctx.request.query_params.get("severity") or None
    if minimum is not None:
        try:
            at_least(minimum)
        except ValueError as exc:
            raise RegistryError(ErrorCode.QUERY_INVALID, str(exc)) from None
    digest = await scans.registry.resolve(ctx.name, reference_param(ctx.params["reference"], for_write=False))
    await scans.registry.manifests.get(ctx.name, digest)  # MANIFEST_UNKNOWN when it is not there
    status = await scans.status(ctx.name, str(digest))
    return JSONResponse(await vulnerability_report(scans.registry, status, minimum))
