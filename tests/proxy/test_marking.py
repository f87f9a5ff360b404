"""Cached repositories are marked with their upstream in the Hub-compatible API and the UI, and the
UI's Mirrors page shows the upstreams, the sync rules' progress and last result, and the cache."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from dockyard.app import build_app
from tests.proxy.conftest import Proxy, Upstream
from tests.proxy.images import push
from tests.proxy.test_pull import pull

pytestmark = pytest.mark.anyio


async def test_hub_api_and_ui_mark_mirrored_repositories(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        await push(c, "library/nginx", "1.27", seed="nginx", sizes=(20_000,))
    sync = [{"repositories": ["docker.io/library/nginx"], "semver": "^1.27", "limit": 2}]
    proxy = make_proxy({"docker.io": (up, {"ttl": "2h"})}, {"proxy": {"sync": sync}})
    await pull(proxy, "docker.io/library/nginx", "1.27")
    await push(proxy.client, "team/app", "1", seed="hosted", sizes=(1000,))
    syncer = proxy.services.proxy.syncer  # type: ignore[union-attr]
    assert syncer is not None
    await syncer.run(0)

    app = build_app(proxy.services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy.test") as c:
        r = await c.get("/v2/repositories/docker.io/")
        assert r.status_code == 200, r.text
        [entry] = r.json()["results"]
        assert entry["name"] == "library/nginx" and entry["mirror_of"] == "http://docker.io.up.test"
        assert entry["can_edit"] is False
        r = await c.get("/v2/repositories/docker.io/library/nginx/")
        assert (
            r.json()["mirror_of"] == "http://docker.io.up.test" and r.json()["permissions"]["write"] is False
        )
        r = await c.get("/v2/repositories/team/app/")
        assert r.json()["mirror_of"] is None and r.json()["permissions"]["write"] is True

        page = (await c.get("/")).text
        assert "mirror of http://docker.io.up.test" in page and 'href="/ui/mirrors"' in page
        assert page.count("chip-mirror") == 1  # team/app is hosted
        page = (await c.get("/ui/repository", params={"name": "docker.io/library/nginx"})).text
        assert "A read-only mirror of" in page and "http://docker.io.up.test" in page
        assert "A read-only mirror" not in (await c.get("/ui/repository", params={"name": "team/app"})).text

        r = await c.get("/ui/mirrors")
        assert r.status_code == 200, r.text
        page = r.text
        assert "http://docker.io.up.test" in page and "docker.io/library/nginx" in page
        assert "semver <code>^1.27</code>" in page and "highest 2" in page
        assert ">ok</span>" in page and "1 tags, 0 manifests and 0 blobs fetched" in page
        assert "<td>2.0 h</td>" in page and "Nothing cached yet" not in page


async def test_the_mirrors_page_is_absent_without_a_cache(make_upstream: Callable[..., Upstream]) -> None:
    up = make_upstream()
    app = build_app(up.services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x.test") as c:
        assert (await c.get("/ui/mirrors")).status_code == 404
        assert "/ui/mirrors" not in (await c.get("/")).text
        r = await c.get("/v2/repositories/library/")
        assert r.status_code == 200
