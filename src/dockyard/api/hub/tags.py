"""Tag endpoints: ``/v2/repositories/{ns}/{repo}/tags/[{tag}/]`` and
``/v2/namespaces/{ns}/repositories/{repo}/tags[/{tag}]`` (list, get one, delete one)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from dockyard.api.blobs import deletes_enabled
from dockyard.api.context import Context
from dockyard.api.hub.errors import HubError, hub_errors
from dockyard.api.hub.params import TAG_ORDERINGS, page_bounds, parse_listing
from dockyard.api.hub.render import envelope, tag_json
from dockyard.errors import ManifestUnknown
from dockyard.oci.reference import is_valid_tag

DEFAULT_ORDERING = "-last_updated"  # Hub lists the most recently pushed tags first


def _tag(ctx: Context) -> str:
    tag = ctx.params["tag"]
    if not is_valid_tag(tag):
        raise HubError.bad_field("tag", f"{tag[:130]!r} is not a valid tag", "Invalid tag")
    return tag


@hub_errors
async def list_tags(ctx: Context) -> Response:
    listing = parse_listing(ctx.request.query_params, TAG_ORDERINGS, DEFAULT_ORDERING)
    names = await ctx.services.browser.tag_names(ctx.name, listing.name, listing.ordering)
    if ctx.request.method == "HEAD":
        return Response(b"", 200 if names else 404)
    start, end = page_bounds(listing, len(names))
    rows = await ctx.services.browser.tag_rows(ctx.name, names[start:end])
    results = [tag_json(ctx.name, row, ctx.services.pulls) for row in rows]
    return JSONResponse(envelope(ctx, listing, len(names), results))


@hub_errors
async def get_tag(ctx: Context) -> Response:
    tag = _tag(ctx)
    row = await ctx.services.browser.tag_row(ctx.name, tag)
    if row is None:
        raise HubError.not_found("Not Found", f"httperror 404: tag '{tag}' not found")
    if ctx.request.method == "HEAD":
        return Response(b"", 200)
    return JSONResponse(tag_json(ctx.name, row, ctx.services.pulls))


@hub_errors
async def delete_tag(ctx: Context) -> Response:
    """Untag (Hub's ``RemoveTag``): the manifest stays until it is deleted or collected."""
    deletes_enabled(ctx)
    tag = _tag(ctx)
    try:  # through the model, so the subscribers hear of it (events.TagDeleted)
        await ctx.model.delete_manifest(ctx.name, tag)
    except ManifestUnknown:
        raise HubError.not_found("Not Found", f"httperror 404: tag '{tag}' not found") from None
    return Response(b"", 204)
