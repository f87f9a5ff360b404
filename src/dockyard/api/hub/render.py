"""Docker Hub's JSON shapes: the paginated envelope, a tag, an image, a repository."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from dockyard.api.context import Context
from dockyard.api.hub.params import Listing
from dockyard.api.hub.times import iso, status
from dockyard.browse.browser import TagRow
from dockyard.browse.describe import ImageDesc
from dockyard.browse.pulls import PullLog


def stable_id(text: str) -> int:
    """A stable integer id (Hub's ``id``/``repository`` fields) derived from a name; < 2**53."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:6], "big")


def envelope(ctx: Context, listing: Listing, count: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    path = ctx.request.url.path
    prefix = ctx.services.config.http.prefix.rstrip("/")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    query = dict(ctx.request.query_params)

    def link(page: int) -> str:
        return ctx.url(path) + "?" + urlencode({**query, "page": page, "page_size": listing.page_size})

    last_page = max(1, -(-count // listing.page_size))
    return {
        "count": count,
        "next": link(listing.page + 1) if listing.page < last_page else None,
        "previous": link(min(listing.page - 1, last_page)) if listing.page > 1 else None,
        "results": results,
    }


def image_json(repository: str, image: ImageDesc, pushed: float | None, pulls: PullLog) -> dict[str, Any]:
    pulled = pulls.of_digest(repository, image.digest)
    # dockyard's own field, only on an image a sparse index names but the repository lacks.
    missing = {"missing": True} if image.missing else {}
    return {
        "architecture": image.architecture,
        "features": image.features,
        "variant": image.variant,
        "digest": image.digest,
        "os": image.os,
        "os_features": image.os_features,
        "os_version": image.os_version,
        "size": image.size,
        "status": status(pushed, pulled),
        "last_pulled": iso(pulled),
        "last_pushed": iso(pushed),
        **missing,
    }


def tag_json(repository: str, row: TagRow, pulls: PullLog) -> dict[str, Any]:
    desc = row.desc
    images = [image_json(repository, i, row.pushed, pulls) for i in desc.images] if desc else []
    return {
        "creator": None,  # dockyard keeps no user ids
        "id": stable_id(f"{repository}:{row.name}"),
        "images": images,
        "last_updated": iso(row.pushed),
        "last_updater": None,
        "last_updater_username": None,
        "name": row.name,
        "repository": stable_id(repository),
        "full_size": desc.full_size if desc else 0,
        "v2": True,
        "tag_status": status(row.pushed, row.pulled),
        "tag_last_pulled": iso(row.pulled),
        "tag_last_pushed": iso(row.pushed),
        "media_type": desc.media_type if desc else None,
        "content_type": desc.content_type if desc else "unrecognized",
        "digest": row.digest,
    }


def repository_json(
    namespace: str,
    repository: str,
    *,
    updated: float | None,
    registered: float | None,
    size: int,
    private: bool,
    can_edit: bool,
    media_types: list[str] | None = None,
    pull_count: int = 0,
    mirror_of: str | None = None,
) -> dict[str, Any]:
    return {
        "name": repository,
        "namespace": namespace,
        "user": namespace,
        "repository_type": "image",
        "status": 1,
        "status_description": "active",
        "description": "",
        "is_private": private,
        "is_automated": False,
        "is_migrated": False,
        "can_edit": can_edit,
        "star_count": 0,
        "pull_count": pull_count,  # manifest GETs, counted from the pull events (browse.pulls)
        "last_updated": iso(updated),
        "last_modified": iso(updated),
        "date_registered": iso(registered),
        "affiliation": "",
        "media_types": media_types or [],
        "content_types": ["image"],
        "categories": [],
        "storage_size": size,
        # dockyard's: the upstream a pull-through cache mirrors this repository from (None: hosted)
        "mirror_of": mirror_of,
    }
