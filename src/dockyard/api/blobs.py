"""``GET/HEAD/DELETE /v2/<name>/blobs/<digest>``: Range (206/416), ETag, zero-copy download."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.api.context import Context
from dockyard.api.headers import RangeNotSatisfiable, parse_byte_range
from dockyard.api.params import digest_param
from dockyard.api.responses import StoredFileResponse
from dockyard.errors import ErrorCode, RegistryError
from dockyard.storage import paths


def deletes_enabled(ctx: Context) -> None:
    if not ctx.services.config.storage.delete.enabled:
        raise RegistryError(ErrorCode.UNSUPPORTED, "deletes are disabled (storage.delete.enabled is false)")


async def get_blob(ctx: Context) -> Response | StoredFileResponse:
    digest = digest_param(ctx.params["digest"])
    size = await ctx.registry.blobs.stat(ctx.name, digest)
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
    request = ctx.request
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
    if byte_range is None:
        headers["Content-Length"] = str(size)
        if request.method == "HEAD":
            return Response(b"", 200, headers)
        return StoredFileResponse(ctx.services.driver, paths.blob_data(digest), 200, headers)
    start, end = byte_range
    length = end - start + 1
    headers["Content-Length"] = str(length)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        return Response(b"", 206, headers)
    return StoredFileResponse(
        ctx.services.driver, paths.blob_data(digest), 206, headers, offset=start, length=length, whole=False
    )


async def delete_blob(ctx: Context) -> Response:
    deletes_enabled(ctx)
    digest = digest_param(ctx.params["digest"])
    await ctx.registry.blobs.unlink(ctx.name, digest)
    return Response(b"", 202, {"Docker-Content-Digest": str(digest), "Content-Length": "0"})
