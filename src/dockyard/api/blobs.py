"""``GET/HEAD/DELETE /v2/<name>/blobs/<digest>``: Range (206/416), ETag, zero-copy download."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.api.accel import accel_response
from dockyard.api.context import Context
from dockyard.api.headers import RangeNotSatisfiable, parse_byte_range
from dockyard.api.params import digest_param
from dockyard.api.responses import BlobResponse
from dockyard.errors import ErrorCode, RegistryError


def deletes_enabled(ctx: Context) -> None:
    if not ctx.services.config.storage.delete.enabled:
        raise RegistryError(ErrorCode.UNSUPPORTED, "deletes are disabled (storage.delete.enabled is false)")


async def get_blob(ctx: Context) -> Response | BlobResponse:
    digest = digest_param(ctx.params["digest"])
    request = ctx.request
    source = None
    if request.method == "HEAD":
        size = await ctx.model.stat_blob(ctx.name, digest)
    else:
        source = await ctx.model.open_blob(ctx.name, digest)
        size = source.size
    etag = f'"{digest}"'
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "Content-Type": "application/octet-stream",
        # Blobs are anyone's bytes, served on the UI's origin: never let a browser sniff them
        # into HTML or script.
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    try:
        byte_range = parse_byte_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        raise RegistryError(
            ErrorCode.BLOB_RANGE_UNSATISFIABLE,
            f"requested range is outside the blob's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None
    if source is not None:
        honoured = byte_range is not None or not request.headers.get("range")
        if (accel := accel_response(ctx.services.config, request, source, headers, honoured)) is not None:
            return accel
    if byte_range is None:
        headers["Content-Length"] = str(size)
        if source is None:
            return Response(b"", 200, headers)
        return BlobResponse(source, 200, headers)
    start, end = byte_range
    length = end - start + 1
    headers["Content-Length"] = str(length)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if source is None:
        return Response(b"", 206, headers)
    return BlobResponse(source, 206, headers, offset=start, length=length, whole=False)


async def delete_blob(ctx: Context) -> Response:
    deletes_enabled(ctx)
    digest = digest_param(ctx.params["digest"])
    await ctx.model.delete_blob(ctx.name, digest)
    return Response(b"", 202, {"Docker-Content-Digest": str(digest), "Content-Length": "0"})
