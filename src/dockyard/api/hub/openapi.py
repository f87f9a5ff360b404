"""The OpenAPI document for the Hub-compatible API and dockyard's admin API (``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from dockyard import __version__
from dockyard.api.context import Context
from dockyard.api.hub.params import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, REPO_ORDERINGS, TAG_ORDERINGS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_NS = _path_param("namespace", "First component of the name; `library` for names without a slash")
_REPO = _path_param("repository", "The rest of the name; nested names as `b/c` or `b%2Fc`")
_TAG = _path_param("tag", "Tag name")
_ERRORS = {
    "400": _json(_ref("FieldError"), "A bad parameter (page, page_size, ordering, tag)"),
    "401": {"description": "Credentials needed (the registry's challenge)"},
    "403": {"description": "Not allowed"},
    "404": _json(_ref("NotFound"), "No such repository or tag, or a page past the end"),
}


def _listing(orderings: tuple[str, ...], default: str) -> list[dict[str, Any]]:
    return [
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
        {
            "name": "page_size",
            "in": "query",
            "description": f"Values above {PAGE_SIZE_MAX} are capped at {PAGE_SIZE_MAX}",
            "schema": {"type": "integer", "minimum": 1, "default": PAGE_SIZE_DEFAULT},
        },
        {"name": "name", "in": "query", "description": "Substring filter", "schema": {"type": "string"}},
        {
            "name": "ordering",
            "in": "query",
            "schema": {"type": "string", "enum": list(orderings), "default": default},
        },
    ]


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "properties": {
            "count": {"type": "integer"},
            "next": _nullable("string"),
            "previous": _nullable("string"),
            "results": {"type": "array", "items": _ref(item)},
        },
    }


_IMAGE = {
    "type": "object",
    "properties": {
        "architecture": {"type": "string"},
        "features": {"type": "string"},
        "variant": _nullable("string"),
        "digest": _nullable("string"),
        "os": {"type": "string"},
        "os_features": {"type": "string"},
        "os_version": _nullable("string"),
        "size": {"type": "integer"},
        "status": {"type": "string", "enum": ["active", "inactive"]},
        "last_pulled": _nullable("string"),
        "last_pushed": _nullable("string"),
        "missing": {
            "type": "boolean",
            "description": "dockyard: present (true) only on a platform a sparse index names that the "
            "repository does not have (validation.manifests.indexes.platforms)",
        },
    },
}
_TAG_SCHEMA = {
    "type": "object",
    "properties": {
        "creator": _nullable("integer"),
        "id": {"type": "integer"},
        "images": {"type": "array", "items": _ref("Image")},
        "last_updated": _nullable("string"),
        "last_updater": _nullable("integer"),
        "last_updater_username": _nullable("string"),
        "name": {"type": "string"},
        "repository": {"type": "integer"},
        "full_size": {"type": "integer"},
        "v2": {"type": "boolean"},
        "tag_status": {"type": "string", "enum": ["active", "inactive"]},
        "tag_last_pulled": _nullable("string"),
        "tag_last_pushed": _nullable("string"),
        "media_type": _nullable("string"),
        "content_type": {"type": "string"},
        "digest": {"type": "string"},
    },
}
_REPOSITORY = {
    "type": "object",
    "properties": {
        **{k: {"type": "string"} for k in ("name", "namespace", "user", "repository_type")},
        **{k: {"type": "string"} for k in ("status_description", "description", "affiliation")},
        **{k: {"type": "boolean"} for k in ("is_private", "is_automated", "is_migrated", "can_edit")},
        **{k: {"type": "integer"} for k in ("status", "star_count", "pull_count", "storage_size")},
        **{k: _nullable("string") for k in ("last_updated", "last_modified", "date_registered")},
        "media_types": {"type": "array", "items": {"type": "string"}},
        "content_types": {"type": "array", "items": {"type": "string"}},
        "categories": {"type": "array", "items": {"type": "object"}},
        "mirror_of": _nullable("string"),
    },
}
_ADMIN_OBJECT = _json({"type": "object"})


def _admin(summary: str, method: str = "get", **extra: Any) -> dict[str, Any]:
    return {method: {"tags": ["admin"], "summary": summary, "responses": {"200": _ADMIN_OBJECT}, **extra}}


def document() -> dict[str, Any]:
    tag_list = {
        "tags": ["hub"],
        "summary": "List tags (newest first by default)",
        "parameters": [_NS, _REPO, *_listing(TAG_ORDERINGS, "-last_updated")],
        "responses": {"200": _json(_page_of("Tag")), **_ERRORS},
    }
    tag_one = {
        "get": {
            "tags": ["hub"],
            "summary": "One tag",
            "parameters": [_NS, _REPO, _TAG],
            "responses": {"200": _json(_ref("Tag")), **_ERRORS},
        },
        "delete": {
            "tags": ["hub"],
            "summary": "Remove the tag (the manifest stays until deleted or collected); needs delete",
            "parameters": [_NS, _REPO, _TAG],
            "responses": {"204": {"description": "Removed"}, **_ERRORS},
        },
    }
    repo_list = {
        "tags": ["hub"],
        "summary": "List the repositories of a namespace that the caller may pull",
        "parameters": [_NS, *_listing(REPO_ORDERINGS, "name")],
        "responses": {"200": _json(_page_of("Repository")), **_ERRORS},
    }
    repo_one = {
        "tags": ["hub"],
        "summary": "One repository",
        "parameters": [_NS, _REPO],
        "responses": {"200": _json(_ref("Repository")), **_ERRORS},
    }
    name = _path_param("name", "Repository name (may contain /)")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dockyard browsing and admin API",
            "version": __version__,
            "description": "Docker Hub-compatible listing endpoints and dockyard's admin endpoints. "
            "The OCI distribution API (/v2/<name>/...) is specified by the OCI, not here.",
        },
        "paths": {
            "/v2/repositories/{namespace}/{repository}/tags/": {"get": tag_list},
            "/v2/repositories/{namespace}/{repository}/tags/{tag}/": tag_one,
            "/v2/namespaces/{namespace}/repositories/{repository}/tags": {"get": tag_list, "head": tag_list},
            "/v2/namespaces/{namespace}/repositories/{repository}/tags/{tag}": tag_one,
            "/v2/repositories/{namespace}/": {"get": repo_list},
            "/v2/namespaces/{namespace}/repositories": {"get": repo_list},
            "/v2/repositories/{namespace}/{repository}/": {"get": repo_one},
            "/v2/namespaces/{namespace}/repositories/{repository}": {"get": repo_one, "head": repo_one},
            "/admin/v1/gc": {
                **_admin("The last garbage collection's report"),
                **_admin("Collect garbage now ({dryRun, deleteUntagged})", "post"),
            },
            "/admin/v1/retention": _admin("Apply retention policies ({dryRun, force, policies?})", "post"),
            "/admin/v1/usage": _admin("Bytes per repository: total, unique, shared"),
            "/admin/v1/quotas": _admin("Quota usage"),
            "/admin/v1/proxy": _admin("The pull-through cache's upstreams"),
            "/admin/v1/proxy/cache": _admin("Cached images: upstream, bytes, last pulled, expiry"),
            "/admin/v1/proxy/cache/purge": _admin(
                "Evict from the cache ({repositories: [globs]} or {expired: true}, dryRun)", "post"
            ),
            "/admin/v1/proxy/sync": _admin("Sync rules: the run in progress and the last result"),
            "/admin/v1/repositories/{name}/tags": _admin(
                "Digest, size, platforms and push time per tag", parameters=[name]
            ),
            "/admin/v1/repositories/{name}/manifests/{reference}": _admin(
                "Inspect an image: platforms, layers, config, history, referrers",
                parameters=[name, _path_param("reference", "Tag or digest")],
            ),
            "/admin/v1/repositories/{name}": _admin("Delete a repository", "delete", parameters=[name]),
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ADMIN_OBJECT}}},
        },
        "components": {
            "schemas": {
                "Tag": _TAG_SCHEMA,
                "Image": _IMAGE,
                "Repository": _REPOSITORY,
                "FieldError": {
                    "type": "object",
                    "properties": {"fields": {"type": "object"}, "text": {"type": "string"}},
                },
                "NotFound": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}, "message": {"type": "string"}},
                },
            },
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{}, {"basic": []}, {"bearer": []}],
    }


_DOCUMENT = document()


async def serve(ctx: Context) -> Response:
    return JSONResponse(_DOCUMENT)
