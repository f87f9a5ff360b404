"""Blob uploads: ``POST /v2/<name>/blobs/uploads/`` and the session URL it returns.

Monolithic (``POST ?digest=``, or POST then ``PUT ?digest=`` with the body), streamed ``PATCH``
without ``Content-Range``, chunked ``PATCH`` with ``Content-Range`` (416 when a chunk does not start
where the data ends: out of order or replayed), status ``GET``, cancel ``DELETE``, and
cross-repository mount with ``from=`` or automatic mount without it (202 fallback when unknown).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response

from dockyard.api.context import Context
from dockyard.api.errors import to_api_error
from dockyard.api.headers import parse_content_length, parse_content_range, range_header
from dockyard.api.params import digest_param
from dockyard.errors import ErrorCode, RangeMismatch, RegistryError, UploadUnknown
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.mount import mount_source


def _session_headers(ctx: Context, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": ctx.url(f"/v2/{ctx.name}/blobs/uploads/{upload_id}"),
        "Range": range_header(size),
        "Docker-Upload-UUID": upload_id,
        "Content-Length": "0",
    }


def _created(ctx: Context, digest: Digest) -> Response:
    headers = {
        "Location": ctx.url(f"/v2/{ctx.name}/blobs/{digest}"),
        "Docker-Content-Digest": str(digest),
        "Content-Length": "0",
    }
    return Response(b"", 201, headers)


def _upload_id(ctx: Context) -> str:
    upload_id = ctx.params["upload_id"]
    if not paths.UPLOAD_ID_RE.fullmatch(upload_id):
        raise UploadUnknown(upload_id[:64])
    return upload_id


def _body(ctx: Context) -> AsyncIterator[bytes]:
    return ctx.request.stream()


async def start_upload(ctx: Context) -> Response:
    query = ctx.request.query_params
    registry = ctx.registry
    mount = query.get("mount")
    if mount:
        digest = digest_param(mount)
        source = query.get("from") or None  # validated by the dispatcher (name_param)
        visible = ctx.services.access.visible(ctx.identity)
        if source is None and visible is not None:  # only from a repository the caller may pull
            source = await mount_source(registry, digest, visible)
        if (source is not None or visible is None) and await registry.mount_blob(ctx.name, digest, source):
            return _created(ctx, digest)
    digest_raw = query.get("digest")
    if digest_raw is not None and not mount:
        digest = digest_param(digest_raw)
        declared = parse_content_length(ctx.request.headers.get("content-length"))
        if registry.quotas is not None and declared is not None:
            # Refused before any byte is stored: the size is known up front.
            await registry.quotas.check(ctx.name, digest, declared)
        await registry.uploads.monolithic(ctx.name, digest, _body(ctx))
        return _created(ctx, digest)
    upload_id = await registry.uploads.start(ctx.name)
    return Response(b"", 202, _session_headers(ctx, upload_id, 0))


def _chunk_start(ctx: Context) -> int | None:
    """Where a chunk says it starts, after checking its Content-Range against Content-Length."""
    header = ctx.request.headers.get("content-range")
    if header is None:
        return None
    start, end = parse_content_range(header)
    length = parse_content_length(ctx.request.headers.get("content-length"))
    if length is not None and length != end - start + 1:
        raise RegistryError(
            ErrorCode.SIZE_INVALID,
            f"Content-Range {header} is {end - start + 1} bytes but Content-Length is {length}",
        )
    return start


async def patch_upload(ctx: Context) -> Response:
    upload_id = _upload_id(ctx)
    start = _chunk_start(ctx)
    try:
        size = await ctx.registry.uploads.append(ctx.name, upload_id, _body(ctx), start=start)
    except RangeMismatch as exc:  # the session's headers too, so the client can resume
        raise to_api_error(exc, _session_headers(ctx, upload_id, exc.size)) from None
    return Response(b"", 202, _session_headers(ctx, upload_id, size))


async def put_upload(ctx: Context) -> Response:
    upload_id = _upload_id(ctx)
    digest_raw = ctx.request.query_params.get("digest")
    if not digest_raw:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID, "the digest query parameter is required to complete an upload"
        )
    digest = digest_param(digest_raw)
    start = _chunk_start(ctx)
    uploads = ctx.registry.uploads
    if start is not None:
        size = await uploads.size(ctx.name, upload_id)
        if start != size:
            raise RegistryError(
                ErrorCode.RANGE_INVALID,
                f"final chunk starts at byte {start} but the upload has {size} bytes",
                headers=_session_headers(ctx, upload_id, size),
            )
    await uploads.finish(ctx.name, upload_id, digest, _body(ctx))
    return _created(ctx, digest)


async def upload_status(ctx: Context) -> Response:
    upload_id = _upload_id(ctx)
    size = await ctx.registry.uploads.size(ctx.name, upload_id)
    headers = _session_headers(ctx, upload_id, size)
    del headers["Content-Length"]  # a 204 carries no body and no length
    return Response(b"", 204, headers)


async def cancel_upload(ctx: Context) -> Response:
    upload_id = _upload_id(ctx)
    await ctx.registry.uploads.cancel(ctx.name, upload_id)
    return Response(b"", 204)
