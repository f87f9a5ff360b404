"""THE route table: name, path pattern, methods → handlers, and the access each method needs.

Auth derives required scopes from here; read-only mode refuses the methods marked as writes.
Repository names may contain ``/``, so patterns are anchored on the fixed suffix after the name.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp

from dockyard.api import admin, base, blobs, manifests, referrers, tags, uploads
from dockyard.api.context import Context

Handler = Callable[[Context], Awaitable[ASGIApp]]
Scope = Literal["none", "catalog", "repository", "admin"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Repository actions per method (distribution appendAccessRecords): pushing needs pull too.
ACTIONS: Mapping[str, tuple[str, ...]] = {
    "GET": ("pull",),
    "HEAD": ("pull",),
    "POST": ("pull", "push"),
    "PUT": ("pull", "push"),
    "PATCH": ("pull", "push"),
    "DELETE": ("delete",),
}
_NAME = r"(?P<name>.+?)"


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]
    scope: Scope = "repository"


ROUTES: tuple[Route, ...] = (
    Route("base", re.compile(r"/v2/?"), {"GET": base.api_version, "HEAD": base.api_version}, "none"),
    Route("catalog", re.compile(r"/v2/_catalog"), {"GET": base.catalog}, "catalog"),
    Route("tags", re.compile(rf"/v2/{_NAME}/tags/list"), {"GET": tags.list_tags}),
    Route(
        "manifest",
        re.compile(rf"/v2/{_NAME}/manifests/(?P<reference>[^/]+)"),
        {
            "GET": manifests.get_manifest,
            "HEAD": manifests.get_manifest,
            "PUT": manifests.put_manifest,
            "DELETE": manifests.delete_manifest,
        },
    ),
    Route("upload-start", re.compile(rf"/v2/{_NAME}/blobs/uploads/?"), {"POST": uploads.start_upload}),
    Route(
        "upload",
        re.compile(rf"/v2/{_NAME}/blobs/uploads/(?P<upload_id>[^/]+)"),
        {
            "GET": uploads.upload_status,
            "PATCH": uploads.patch_upload,
            "PUT": uploads.put_upload,
            "DELETE": uploads.cancel_upload,
        },
    ),
    Route(
        "blob",
        re.compile(rf"/v2/{_NAME}/blobs/(?P<digest>[^/]+)"),
        {"GET": blobs.get_blob, "HEAD": blobs.get_blob, "DELETE": blobs.delete_blob},
    ),
    Route(
        "referrers",
        re.compile(rf"/v2/{_NAME}/referrers/(?P<digest>[^/]+)"),
        {"GET": referrers.list_referrers},
    ),
    # dockyard's admin API (every route needs registry:admin:*).
    Route("admin-gc", re.compile(r"/admin/v1/gc"), {"GET": admin.gc_status, "POST": admin.run_gc}, "admin"),
    Route("admin-retention", re.compile(r"/admin/v1/retention"), {"POST": admin.run_retention}, "admin"),
    Route("admin-usage", re.compile(r"/admin/v1/usage"), {"GET": admin.usage}, "admin"),
    Route("admin-quotas", re.compile(r"/admin/v1/quotas"), {"GET": admin.quotas}, "admin"),
    Route(
        "admin-tags", re.compile(rf"/admin/v1/repositories/{_NAME}/tags"), {"GET": admin.tag_details}, "admin"
    ),
    Route(
        "admin-inspect",
        re.compile(rf"/admin/v1/repositories/{_NAME}/manifests/(?P<reference>[^/]+)"),
        {"GET": admin.inspect},
        "admin",
    ),
    Route(
        "admin-repository",
        re.compile(rf"/admin/v1/repositories/{_NAME}"),
        {"DELETE": admin.delete_repository},
        "admin",
    ),
)


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found:
            return route, found.groupdict()
    return None
