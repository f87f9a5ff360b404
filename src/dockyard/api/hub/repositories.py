"""Repository endpoints: ``/v2/repositories/{ns}/``, ``/v2/namespaces/{ns}/repositories`` (lists)
and ``/v2/repositories/{ns}/{repo}/``, ``/v2/namespaces/{ns}/repositories/{repo}`` (one)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse, Response

from dockyard.api.context import Context
from dockyard.api.hub import names as hub_names
from dockyard.api.hub.errors import HubError, hub_errors
from dockyard.api.hub.params import REPO_ORDERINGS, page_bounds, parse_listing
from dockyard.api.hub.render import envelope, repository_json
from dockyard.auth.access import ANONYMOUS, Access
from dockyard.browse.browser import order

log = logging.getLogger("dockyard.hub")
DEFAULT_ORDERING = "name"
_DETAIL_MEDIA_TYPES_TAGS = 100


def _mirror_of(ctx: Context, name: str) -> str | None:
    proxy = ctx.services.proxy
    return proxy.upstream_of(name) if proxy is not None else None


def _may_push(ctx: Context, name: str) -> bool:
    return ctx.services.access.may(ctx.identity, Access("repository", name, "push"))


def _private(ctx: Context, name: str) -> bool:
    anonymous = ctx.services.access.visible(ANONYMOUS)
    return anonymous is not None and not anonymous(name)


@hub_errors
async def list_repositories(ctx: Context) -> Response:
    listing = parse_listing(ctx.request.query_params, REPO_ORDERINGS, DEFAULT_ORDERING)
    namespace = ctx.params["namespace"]
    visible = ctx.services.access.visible(ctx.identity)
    pairs = hub_names.members(await ctx.registry.listing.repositories(), namespace)
    stored = {repo: name for name, repo in pairs if (visible is None or visible(name))}
    repos = [r for r in stored if listing.name in r] if listing.name else list(stored)
    if listing.ordering in ("last_updated", "-last_updated"):
        times = await ctx.services.browser.repo_times([stored[r] for r in repos])
        repos = order(repos, listing.ordering, lambda r: times.get(stored[r]))
    elif listing.ordering in ("pull_count", "-pull_count"):
        await ctx.services.pulls.refresh()
        sign = -1 if listing.ordering == "-pull_count" else 1
        repos = sorted(repos, key=lambda r: (sign * ctx.services.pulls.count_of_repository(stored[r]), r))
    else:
        repos = order(repos, listing.ordering, lambda _: None)
    start, end = page_bounds(listing, len(repos))
    page = repos[start:end]
    results = [await _safe_entry(ctx, namespace, repo, stored[repo]) for repo in page]
    return JSONResponse(envelope(ctx, listing, len(repos), results))


async def _safe_entry(ctx: Context, namespace: str, repo: str, name: str) -> dict[str, Any]:
    """One repository of a listing; an unexpected error marks its entry instead of failing the page."""
    try:
        return await _entry(ctx, namespace, repo, name)
    except Exception:
        log.exception("cannot describe a repository", extra={"repository": name})
        entry = repository_json(
            namespace,
            repo,
            updated=None,
            registered=None,
            size=0,
            private=_private(ctx, name),
            can_edit=False,
            mirror_of=_mirror_of(ctx, name),
        )
        entry["status_description"] = "unreadable"
        return entry


async def _entry(ctx: Context, namespace: str, repo: str, name: str, **extra: Any) -> dict[str, Any]:
    updated, registered = await ctx.services.browser.repository_times(name)
    await ctx.services.pulls.refresh()
    mirror_of = _mirror_of(ctx, name)
    return repository_json(
        namespace,
        repo,
        updated=extra.pop("updated", updated),
        registered=registered,
        size=await ctx.services.browser.storage_size(name),
        private=_private(ctx, name),
        # A mirrored repository refuses pushes, whatever the caller may do elsewhere.
        can_edit=mirror_of is None
        and ctx.services.access.may(ctx.identity, Access("repository", name, "push")),
        pull_count=ctx.services.pulls.count_of_repository(name),
        mirror_of=mirror_of,
        **extra,
    )


@hub_errors
async def get_repository(ctx: Context) -> Response:
    name = ctx.name
    if not await ctx.registry.repository_exists(name):
        await ctx.registry.listing.repository_missing(name)
        raise HubError.not_found("Not Found", f"object not found: repository {name}")
    if ctx.request.method == "HEAD":
        return Response(b"", 200)
    tags = await ctx.registry.listing.tags(name)
    times = await ctx.services.browser.tag_times(name, tags)
    known = [t for t in times.values() if t is not None]
    newest = order(tags, "-last_updated", times.get)[:_DETAIL_MEDIA_TYPES_TAGS]
    rows = await ctx.services.browser.tag_rows(name, newest)
    media_types = sorted({r.desc.media_type for r in rows if r.desc})
    namespace, repo = ctx.params["namespace"], ctx.params["repository"]
    body = await _entry(
        ctx, namespace, repo, name, updated=max(known) if known else None, media_types=media_types
    )
    access = ctx.services.access
    body.update(
        {
            "hub_user": namespace,
            "collaborator_count": 0,
            "has_starred": False,
            "full_description": "",
            "permissions": {
                "read": True,
                "write": body["mirror_of"] is None
                and access.may(ctx.identity, Access("repository", name, "push")),
                "admin": access.may(ctx.identity, Access("registry", "admin", "*")),
            },
            "immutable_tags_settings": {"enabled": False, "rules": []},
            "source": None,
        }
    )
    return JSONResponse(body)
