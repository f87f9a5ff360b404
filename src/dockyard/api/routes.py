"""THE route table: name, path pattern, methods → handlers, and the access each method needs.

Auth derives required scopes from here; read-only mode refuses the methods marked as writes.
Repository names may contain ``/``, so patterns are anchored on the fixed suffix after the name.

The Docker Hub-compatible routes (``/v2/repositories/…``, ``/v2/namespaces/…``) come first. Their
repository part never contains a ``tags``/``manifests``/``blobs``/``referrers`` component and a tag
named ``list`` needs its trailing slash, so no registry API path (``/v2/<name>/tags/list``,
``…/manifests/…``, ``…/blobs/…``, ``…/referrers/…``) is shadowed, even for a repository named
``repositories/x`` (see README, "Browsing").
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp

from dockyard.api import (
    admin,
    audit,
    base,
    blobs,
    manifests,
    notifications,
    proxyadmin,
    referrers,
    scans,
    tags,
    uploads,
)
from dockyard.api.context import Context
from dockyard.api.hub import openapi
from dockyard.api.hub import repositories as hub_repositories
from dockyard.api.hub import tags as hub_tags
from dockyard.api.hub.names import NAMESPACE_PATTERN, REPOSITORY_PATTERN

Handler = Callable[[Context], Awaitable[ASGIApp]]
# "hub-list": anyone; the handler shows only what visible(identity) allows.
# "hub-repository": like "repository", for the name the Hub namespace/repository pair maps to.
Scope = Literal["none", "catalog", "repository", "admin", "hub-list", "hub-repository"]
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
_NS, _REPO = NAMESPACE_PATTERN, REPOSITORY_PATTERN
# A tag, then "/" or the end; "list" only with its slash (``…/tags/list`` is the registry's).
_TAG = r"tags/(?P<tag>[^/]+)(?:/|(?<!/tags/list))"
_HUB_TAGS = {"GET": hub_tags.list_tags, "HEAD": hub_tags.list_tags}
_HUB_TAG = {"GET": hub_tags.get_tag, "HEAD": hub_tags.get_tag, "DELETE": hub_tags.delete_tag}
_HUB_REPO = {"GET": hub_repositories.get_repository, "HEAD": hub_repositories.get_repository}
_HUB_REPOS = {"GET": hub_repositories.list_repositories}


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]
    scope: Scope = "repository"
    # Text every path this route matches contains (checked before the pattern runs; the patterns
    # with a repository name scan the whole path, and most requests are for the last routes).
    needle: str = ""

    def __post_init__(self) -> None:
        if self.needle.replace(".", "\\.") not in self.pattern.pattern:
            raise ValueError(f"route {self.name}: {self.needle!r} is not literal text of its pattern")


ROUTES: tuple[Route, ...] = (
    Route("base", re.compile(r"/v2/?"), {"GET": base.api_version, "HEAD": base.api_version}, "none"),
    Route("catalog", re.compile(r"/v2/_catalog"), {"GET": base.catalog}, "catalog"),
    # Docker Hub-compatible listing API (api/hub/): legacy paths, then the documented ones.
    Route(
        "hub-tags",
        re.compile(rf"/v2/repositories/{_NS}/{_REPO}/tags/?"),
        _HUB_TAGS,
        "hub-repository",
        needle="/v2/repositories/",
    ),
    Route(
        "hub-tag",
        re.compile(rf"/v2/repositories/{_NS}/{_REPO}/{_TAG}"),
        _HUB_TAG,
        "hub-repository",
        needle="/v2/repositories/",
    ),
    Route(
        "hub-repos",
        re.compile(rf"/v2/repositories/{_NS}/?"),
        _HUB_REPOS,
        "hub-list",
        needle="/v2/repositories/",
    ),
    Route(
        "hub-repo",
        re.compile(rf"/v2/repositories/{_NS}/{_REPO}/?"),
        _HUB_REPO,
        "hub-repository",
        needle="/v2/repositories/",
    ),
    Route(
        "hub-ns-tags",
        re.compile(rf"/v2/namespaces/{_NS}/repositories/{_REPO}/tags/?"),
        _HUB_TAGS,
        "hub-repository",
        needle="/v2/namespaces/",
    ),
    Route(
        "hub-ns-tag",
        re.compile(rf"/v2/namespaces/{_NS}/repositories/{_REPO}/{_TAG}"),
        _HUB_TAG,
        "hub-repository",
        needle="/v2/namespaces/",
    ),
    Route(
        "hub-ns-repos",
        re.compile(rf"/v2/namespaces/{_NS}/repositories/?"),
        _HUB_REPOS,
        "hub-list",
        needle="/v2/namespaces/",
    ),
    Route(
        "hub-ns-repo",
        re.compile(rf"/v2/namespaces/{_NS}/repositories/{_REPO}/?"),
        _HUB_REPO,
        "hub-repository",
        needle="/v2/namespaces/",
    ),
    Route("openapi", re.compile(r"/openapi\.json"), {"GET": openapi.serve}, "none"),
    Route("tags", re.compile(rf"/v2/{_NAME}/tags/list"), {"GET": tags.list_tags}, needle="/tags/list"),
    Route(
        "manifest",
        re.compile(rf"/v2/{_NAME}/manifests/(?P<reference>[^/]+)"),
        {
            "GET": manifests.get_manifest,
            "HEAD": manifests.get_manifest,
            "PUT": manifests.put_manifest,
            "DELETE": manifests.delete_manifest,
        },
        needle="/manifests/",
    ),
    Route(
        "upload-start",
        re.compile(rf"/v2/{_NAME}/blobs/uploads/?"),
        {"POST": uploads.start_upload},
        needle="/blobs/uploads",
    ),
    Route(
        "upload",
        re.compile(rf"/v2/{_NAME}/blobs/uploads/(?P<upload_id>[^/]+)"),
        {
            "GET": uploads.upload_status,
            "PATCH": uploads.patch_upload,
            "PUT": uploads.put_upload,
            "DELETE": uploads.cancel_upload,
        },
        needle="/blobs/uploads/",
    ),
    Route(
        "blob",
        re.compile(rf"/v2/{_NAME}/blobs/(?P<digest>[^/]+)"),
        {"GET": blobs.get_blob, "HEAD": blobs.get_blob, "DELETE": blobs.delete_blob},
        needle="/blobs/",
    ),
    Route(
        "referrers",
        re.compile(rf"/v2/{_NAME}/referrers/(?P<digest>[^/]+)"),
        {"GET": referrers.list_referrers},
        needle="/referrers/",
    ),
    # dockyard's admin API (every route needs registry:admin:*).
    Route("admin-gc", re.compile(r"/admin/v1/gc"), {"GET": admin.gc_status, "POST": admin.run_gc}, "admin"),
    Route("admin-retention", re.compile(r"/admin/v1/retention"), {"POST": admin.run_retention}, "admin"),
    Route("admin-usage", re.compile(r"/admin/v1/usage"), {"GET": admin.usage}, "admin"),
    Route("admin-quotas", re.compile(r"/admin/v1/quotas"), {"GET": admin.quotas}, "admin"),
    Route("admin-audit", re.compile(r"/admin/v1/audit"), {"GET": audit.query}, "admin"),
    Route("admin-proxy", re.compile(r"/admin/v1/proxy"), {"GET": admin.proxy_status}, "admin"),
    Route("admin-vulndb", re.compile(r"/admin/v1/vulndb"), {"GET": admin.vulndb_status}, "admin"),
    Route(
        "admin-scans",
        re.compile(r"/admin/v1/scans"),
        {"GET": scans.scan_status, "POST": scans.request_scan},
        "admin",
    ),
    Route(
        "admin-proxy-cache", re.compile(r"/admin/v1/proxy/cache"), {"GET": proxyadmin.cache_listing}, "admin"
    ),
    Route(
        "admin-proxy-purge",
        re.compile(r"/admin/v1/proxy/cache/purge"),
        {"POST": proxyadmin.cache_purge},
        "admin",
    ),
    Route("admin-proxy-sync", re.compile(r"/admin/v1/proxy/sync"), {"GET": proxyadmin.sync_status}, "admin"),
    Route(
        "admin-notifications", re.compile(r"/admin/v1/notifications"), {"GET": notifications.status}, "admin"
    ),
    Route(
        "admin-tags", re.compile(rf"/admin/v1/repositories/{_NAME}/tags"), {"GET": admin.tag_details}, "admin"
    ),
    Route(
        "admin-vulnerabilities",
        re.compile(rf"/admin/v1/repositories/{_NAME}/vulnerabilities/(?P<reference>[^/]+)"),
        {"GET": scans.vulnerabilities},
        "admin",
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
        if route.needle not in path:
            continue
        found = route.pattern.fullmatch(path)
        if found:
            return route, found.groupdict()
    return None
