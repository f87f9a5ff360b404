"""Hub-compatible repository listing and detail, access rules, and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services, wrap_token_server
from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.config import parse_config
from tests.api.helpers import push_image

pytestmark = pytest.mark.anyio

HUB_REPOSITORY = {
    "name", "namespace", "repository_type", "status", "status_description", "description", "is_private",
    "star_count", "pull_count", "last_updated", "last_modified", "date_registered", "affiliation",
    "media_types", "content_types", "categories", "storage_size",
    # the legacy /v2/repositories/{ns}/ entries (hub-tool)
    "user", "can_edit", "is_automated", "is_migrated",
    # dockyard's: the upstream a pull-through cache mirrors the repository from (null: hosted)
    "mirror_of",
}  # fmt: skip
HUB_REPOSITORY_INFO = HUB_REPOSITORY | {
    "hub_user", "collaborator_count", "has_starred", "full_description", "permissions",
    "immutable_tags_settings", "source",
}  # fmt: skip


async def test_namespace_listing(client: httpx.AsyncClient) -> None:
    for name in ("acme/web", "acme/api", "acme/tools/cli", "other/x"):
        await push_image(client, name, "v1")
    for path in ("/v2/repositories/acme/", "/v2/namespaces/acme/repositories"):
        r = await client.get(path)
        assert r.status_code == 200
        page = r.json()
        assert page["count"] == 3 and [x["name"] for x in page["results"]] == ["api", "tools/cli", "web"]
        for entry in page["results"]:
            assert set(entry) == HUB_REPOSITORY
            assert entry["namespace"] == "acme" and entry["is_private"] is False
            assert entry["storage_size"] > 0 and entry["last_updated"].endswith("Z")
    r = await client.get("/v2/repositories/acme/", params={"name": "i", "ordering": "-name", "page_size": 1})
    page = r.json()
    assert page["count"] == 2 and [x["name"] for x in page["results"]] == ["tools/cli"]
    assert "page=2" in page["next"]
    r = await client.get("/v2/repositories/acme/", params={"ordering": "stars"})
    assert r.status_code == 400 and r.json()["text"] == "Invalid ordering value"
    r = await client.get("/v2/repositories/acme/", params={"page": 9})
    assert r.status_code == 404
    r = await client.get("/v2/repositories/nobody/")
    assert r.json() == {"count": 0, "next": None, "previous": None, "results": []}


async def test_repository_detail(client: httpx.AsyncClient) -> None:
    await push_image(client, "acme/web", "v1")
    for path in ("/v2/repositories/acme/web/", "/v2/namespaces/acme/repositories/web"):
        r = await client.get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == HUB_REPOSITORY_INFO
        assert body["media_types"] == ["application/vnd.oci.image.manifest.v1+json"]
        assert body["permissions"] == {"read": True, "write": True, "admin": True}
    assert (await client.head("/v2/namespaces/acme/repositories/web")).status_code == 200
    assert (await client.get("/v2/namespaces/acme/repositories/nope")).status_code == 404


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/v2/repositories/{namespace}/{repository}/tags/",
        "/v2/namespaces/{namespace}/repositories/{repository}/tags/{tag}",
        "/v2/namespaces/{namespace}/repositories",
        "/admin/v1/gc",
        "/admin/v1/usage",
        "/admin/v1/repositories/{name}/manifests/{reference}",
    ):
        assert path in doc["paths"], path
    from tests.hub.test_hub_tags import HUB_IMAGE, HUB_TAG

    assert set(doc["components"]["schemas"]["Tag"]["properties"]) == HUB_TAG
    # "missing" only on an absent platform of a sparse index (tests/web/test_sparse_pages.py).
    assert set(doc["components"]["schemas"]["Image"]["properties"]) == HUB_IMAGE | {"missing"}


@pytest.fixture
def auth_client(tmp_path: Path) -> Any:
    users = HtpasswdFile(tmp_path / "htpasswd")
    users.set_password("alice", "pw-alice", cost=4, create=True)
    users.set_password("bob", "pw-bob", cost=4, create=True)

    def factory(mode: str) -> httpx.AsyncClient:
        auth: dict[str, Any] = {
            "htpasswd": {"path": str(tmp_path / "htpasswd")},
            "robots": {"path": str(tmp_path / "robots.json")},
            "access": {
                "admins": ["alice"],
                "rules": [
                    {"repositories": ["pub/**"], "actions": ["pull"], "anonymous": True},
                    {"repositories": ["team/**"], "actions": ["pull"], "users": ["bob"]},
                ],
            },
        }
        if mode == "token":
            auth["token"] = {"server": {"enabled": True, "keys": str(tmp_path / "keys")}}
        services = create_services(parse_config({"storage": {"inmemory": {}}, "auth": auth}))
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=wrap_token_server(RegistryApp(services), services.access, "/")),
            base_url="http://r.test",
        )

    return factory


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
async def test_same_access_rules_as_the_registry(auth_client: Any, mode: str) -> None:
    async with auth_client(mode) as c:
        admin = httpx.BasicAuth("alice", "pw-alice")
        if mode == "token":
            r = await c.get("/token", params={"service": "dockyard", "scope": [
                f"repository:{n}:pull,push,delete" for n in ("pub/a", "team/b", "secret/c")
            ]}, auth=admin)  # fmt: skip
            admin_headers = {"Authorization": f"Bearer {r.json()['token']}"}
        else:
            admin_headers = {"Authorization": admin._auth_header}
        for name in ("pub/a", "team/b", "secret/c"):
            await _push(c, name, admin_headers)
        # Anonymous: public repositories only, no challenge on listings.
        assert (
            await c.get("/v2/repositories/pub/tags/")
        ).status_code == 404  # "pub" namespace, repo "tags"? no
        r = await c.get("/v2/repositories/pub/")
        assert [x["name"] for x in r.json()["results"]] == ["a"]
        assert (await c.get("/v2/repositories/pub/a/tags/")).status_code == 200
        assert (await c.get("/v2/repositories/team/")).json()["count"] == 0
        r = await c.get("/v2/repositories/team/b/tags/")
        assert r.status_code == 401 and "www-authenticate" in r.headers
        # bob (Basic works in both modes on the Hub routes) sees team/b, not secret/c; cannot delete.
        bob = ("bob", "pw-bob")
        assert (await c.get("/v2/repositories/team/", auth=bob)).json()["count"] == 1
        assert (await c.get("/v2/repositories/team/b/tags/", auth=bob)).status_code == 200
        assert (await c.get("/v2/repositories/secret/c/tags/", auth=bob)).status_code in (401, 403)
        assert (await c.get("/v2/repositories/secret/", auth=bob)).json()["count"] == 0
        r = await c.delete("/v2/repositories/team/b/tags/v1/", auth=bob)
        assert r.status_code in (401, 403)
        r = await c.delete("/v2/repositories/team/b/tags/v1/", auth=("alice", "pw-alice"))
        assert r.status_code == 204
        r = await c.get("/v2/repositories/secret/", auth=("alice", "wrong"))
        assert r.status_code == 401


async def _push(c: httpx.AsyncClient, name: str, headers: dict[str, str]) -> None:
    client = httpx.AsyncClient(transport=c._transport, base_url=str(c.base_url), headers=headers)
    await push_image(client, name, "v1")


async def test_pull_counts_from_pull_events(client: httpx.AsyncClient) -> None:
    """A manifest GET counts for its repository (and tag); HEADs do not; counts order a listing."""
    for name in ("acme/web", "acme/api", "acme/db"):
        await push_image(client, name, "v1")
    for name, pulls in (("acme/web", 3), ("acme/api", 1)):
        for _ in range(pulls):
            assert (await client.get(f"/v2/{name}/manifests/v1")).status_code == 200
    assert (await client.head("/v2/acme/db/manifests/v1")).status_code == 200  # resolving is no pull
    counts = {
        e["name"]: e["pull_count"] for e in (await client.get("/v2/repositories/acme/")).json()["results"]
    }
    assert counts == {"web": 3, "api": 1, "db": 0}
    detail = await client.get("/v2/namespaces/acme/repositories/web")
    assert detail.json()["pull_count"] == 3
    most = await client.get("/v2/repositories/acme/", params={"ordering": "-pull_count"})
    assert [e["name"] for e in most.json()["results"]] == ["web", "api", "db"]
    least = await client.get("/v2/repositories/acme/", params={"ordering": "pull_count"})
    assert [e["name"] for e in least.json()["results"]] == ["db", "api", "web"]
