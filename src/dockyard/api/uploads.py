"""Blob uploads: ``POST /v2/<name>/blobs/uploads/`` and the session URL it returns.

Monolithic (``POST ?digest=``, or POST then ``PUT ?digest=`` with the body), streamed ``PATCH``
without ``Content-Range``, chunked ``PATCH`` with ``Content-Range`` (416 when a chunk does not start
where the data ends: out of order or replayed), status ``GET``, cancel ``DELETE``, and
cross-repository mount with ``from=`` or automatic mount without it (202 fallback when unknown).
``digest-algorithm`` (spec main, end-4c) picks the algorithm a session hashes its bytes with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response

from dockyard.api.context import Context
from dockyard.api.errors import to_api_error
from dockyard.api.headers import parse_content_length, parse_content_range, range_header
from dockyard.api.params import digest_param
from dockyard.errors import ErrorCode, RangeMismatch, RegistryError, UploadUnknown
from dockyard.oci.digest import SUPPORTED_ALGORITHMS, Digest
from dockyard.storage import paths


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


def algorithm_param(value: str | None) -> str | None:
    """``digest-algorithm``: one this registry can compute, else 400 ``DIGEST_INVALID`` (before a
    session exists)."""
    if value is None:
        return None
    if value not in SUPPORTED_ALGORITHMS:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID,
            f"digest-algorithm {value[:80]!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_ALGORITHMS)})",
            {"digest-algorithm": value[:300]},
        )
    return value


async def start_upload(ctx: Context) -> Response:
    """Mount, one-request push, or a new session. ``digest-algorithm`` is checked first, whatever
    the form: with ``digest=`` (the bytes are all here) the digest's own algorithm verifies them;
    a session falls back to the algorithm of the ``mount`` digest it could not mount."""
    query = ctx.request.query_params
    model = ctx.model
    algorithm = algorithm_param(query.get("digest-algorithm"))
    mount = query.get("mount")
    if mount:
        digest = digest_param(mount)
        source = query.get("from") or None  # validated by the dispatcher (name_param)
        visible = ctx.services.access.visible(ctx.identity)  # without from=: only what it may pull
        if await model.mount_blob(ctx.name, digest, source, visible):
            return _created(ctx, digest)
        algorithm = algorithm or digest.algorithm
    digest_raw = query.get("digest")
    if digest_raw is not None and not mount:
        digest = digest_param(digest_raw)
        declared = parse_content_length(ctx.request.headers.get("content-length"))
        await model.push_blob(ctx.name, digest, _body(ctx), declared)
        return _created(ctx, digest)
    upload_id = await model.start_upload(ctx.name, algorithm or "sha256")
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
        size = await ctx.model.append_upload(ctx.name, upload_id, _body(ctx), start=start)
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
    if start is not None:
        size = await ctx.model.upload_status(ctx.name, upload_id)
        if start != size:
            raise RegistryError(
                ErrorCode.RANGE_INVALID,
                f"final chunk starts at byte {start} but the upload has {size} bytes",
                headers=_session_headers(ctx, upload_id, size),
            )
    await ctx.model.finish_upload(ctx.name, upload_id, digest, _body(ctx))
    return _created(ctx, digest)


async def upload_status(ctx: Context) -> Response:
    upload_id = _upload_id(ctx)
    size = await ctx.model.upload_status(ctx.name, upload_id)
    headers = _session_headers(ctx, upload_id, size)
    del headers["Content-Length"]  # a 204 carries no body and no length
    return Response(b"", 204, headers)


async def cancel_upload(ctx: Context) -> Response:
    upload_id = _upload_id(ctx)
    await ctx.model.cancel_upload(ctx.name, upload_id)
    return Response(b"", 204)
