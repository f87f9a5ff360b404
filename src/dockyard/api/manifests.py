"""``GET/HEAD/PUT/DELETE /v2/<name>/manifests/<tag|digest>``."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.api.blobs import deletes_enabled
from dockyard.api.context import Context
from dockyard.api.headers import parse_content_length
from dockyard.api.params import reference_param
from dockyard.errors import ErrorCode, RegistryError

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def too_big() -> RegistryError:
    return RegistryError(
        ErrorCode.MANIFEST_TOO_BIG,
        f"manifest is larger than the {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB limit",
    )


async def get_manifest(ctx: Context) -> Response:
    reference = reference_param(ctx.params["reference"], for_write=False)
    # The registry tells its subscribers (pull times: browse.pullevents); HEAD is not a pull.
    head = ctx.request.method == "HEAD"
    digest, media_type, body = await ctx.model.pull_manifest(ctx.name, reference, head=head)
    etag = f'"{digest}"'
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": etag,
        "Content-Length": str(len(body)),
        "Content-Type": media_type,
    }
    if ctx.request.headers.get("if-none-match") == etag:
        del headers["Content-Length"]
        return Response(status_code=304, headers=headers)
    return Response(b"" if head else body, 200, headers)


async def _read_body(ctx: Context) -> bytes:
    declared = parse_content_length(ctx.request.headers.get("content-length"))
    if declared is not None and declared > MAX_MANIFEST_BYTES:
        raise too_big()
    body = bytearray()
    async for chunk in ctx.request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            raise too_big()
    return bytes(body)


async def put_manifest(ctx: Context) -> Response:
    reference = reference_param(ctx.params["reference"], for_write=True)
    body = await _read_body(ctx)
    result = await ctx.model.put_manifest(ctx.name, reference, body, ctx.request.headers.get("content-type"))
    headers = {
        "Location": ctx.url(f"/v2/{ctx.name}/manifests/{result.digest}"),
        "Docker-Content-Digest": str(result.digest),
        "Content-Length": "0",
    }
    if result.subject is not None:
        headers["OCI-Subject"] = str(result.subject)
    return Response(b"", 201, headers)


async def delete_manifest(ctx: Context) -> Response:
    deletes_enabled(ctx)
    reference = reference_param(ctx.params["reference"], for_write=False)
    force = ctx.request.query_params.get("force", "").lower() in ("1", "true", "yes")
    await ctx.model.delete_manifest(ctx.name, reference, force=force)
    return Response(b"", 202, {"Content-Length": "0"})
