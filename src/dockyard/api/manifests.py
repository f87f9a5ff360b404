"""``GET/HEAD/PUT/DELETE /v2/<name>/manifests/<tag|digest>``."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.api.blobs import deletes_enabled
from dockyard.api.context import Context
from dockyard.api.headers import parse_content_length
from dockyard.api.params import reference_param
from dockyard.errors import ErrorCode, RegistryError
from dockyard.oci.digest import Digest
from dockyard.oci.reference import TagError, validate_tag

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# ``PUT /manifests/<digest>?tag=…``: the spec (main, end-7) asks for at least 10 tags per request
# and allows 414 past a stated limit; this is ours (README, "API behaviour worth knowing").
MAX_TAGS_PER_PUSH = 100


def too_big() -> RegistryError:
    return RegistryError(
        ErrorCode.MANIFEST_TOO_BIG,
        f"manifest is larger than the {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB limit",
    )


async def get_manifest(ctx: Context) -> Response:
    reference = reference_param(ctx.params["reference"], for_write=False)
    # The registry tells its subscribers (pull times: browse.pullevents); HEAD is not a pull.
    head = ctx.request.method == "HEAD"
    admit = None
    if ctx.services.policies is not None:  # scan.policies: the check the manifest must pass
        user_agent = ctx.request.headers.get("user-agent", "")
        admit = ctx.services.policies.admission(
            ctx.name, ctx.identity, ctx.services.access, head=head, user_agent=user_agent
        )
    digest, media_type, body = await ctx.model.pull_manifest(ctx.name, reference, head=head, admit=admit)
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


def tag_params(ctx: Context, reference: str | Digest) -> list[str]:
    """The ``tag`` query parameters of a push by digest (distribution-spec main, end-7): each
    checked like a tag in the path, all before anything is stored, duplicates once each in the
    order given. More than :data:`MAX_TAGS_PER_PUSH` parameters get 414, counted as sent."""
    raw = ctx.request.query_params.getlist("tag")
    if not raw:
        return []
    if not isinstance(reference, Digest):
        raise RegistryError(
            ErrorCode.TAG_INVALID,
            "tag query parameters are only accepted on a push by digest (PUT /v2/<name>/manifests/<digest>)",
            {"tag": reference},
        )
    if len(raw) > MAX_TAGS_PER_PUSH:
        raise RegistryError(
            ErrorCode.TOO_MANY_TAGS,
            f"{len(raw)} tag query parameters; at most {MAX_TAGS_PER_PUSH} per request",
            {"limit": MAX_TAGS_PER_PUSH, "count": len(raw)},
        )
    tags: list[str] = []
    for tag in raw:
        try:
            validate_tag(tag)
        except TagError as exc:
            raise RegistryError(ErrorCode.TAG_INVALID, str(exc), {"tag": tag[:300]}) from None
        if tag not in tags:
            tags.append(tag)
    return tags


async def put_manifest(ctx: Context) -> Response:
    reference = reference_param(ctx.params["reference"], for_write=True)
    tags = tag_params(ctx, reference)
    body = await _read_body(ctx)
    content_type = ctx.request.headers.get("content-type")
    result = await ctx.model.put_manifest(ctx.name, reference, body, content_type, tags=tags)
    headers = {
        "Location": ctx.url(f"/v2/{ctx.name}/manifests/{result.digest}"),
        "Docker-Content-Digest": str(result.digest),
        "Content-Length": "0",
    }
    if result.subject is not None:
        headers["OCI-Subject"] = str(result.subject)
    response = Response(b"", 201, headers)
    # One field line per tag: RFC 9110 §5.3 makes them equal to one comma-separated line, and a
    # tag cannot contain a comma, so either reading gives the same list.
    for tag in tags:
        response.headers.append("OCI-Tag", tag)
    return response


async def delete_manifest(ctx: Context) -> Response:
    deletes_enabled(ctx)
    reference = reference_param(ctx.params["reference"], for_write=False)
    force = ctx.request.query_params.get("force", "").lower() in ("1", "true", "yes")
    await ctx.model.delete_manifest(ctx.name, reference, force=force)
    return Response(b"", 202, {"Content-Length": "0"})
