"""Behind two proxies, every surface names the client-facing host: the UI's ``docker pull`` lines,
the registry API's ``Location`` headers and the token challenge's realm."""

from __future__ import annotations

import pytest

from tests.api.helpers import push_image
from tests.web.conftest import UIFactory

pytestmark = pytest.mark.anyio

TWO_PROXIES = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "registry.example, edge.internal"}


async def test_two_proxies_show_the_first_host_everywhere(make_ui: UIFactory) -> None:
    async with make_ui() as c:
        await push_image(c, "team/app", "v1")
        r = await c.get("/ui/repository", params={"name": "team/app"}, headers=TWO_PROXIES)
        assert r.status_code == 200
        assert "docker pull registry.example/team/app:v1" in r.text
        assert "edge.internal" not in r.text
        r = await c.post("/v2/team/app/blobs/uploads/", headers=TWO_PROXIES)
        assert r.headers["Location"].startswith("https://registry.example/v2/team/app/blobs/uploads/")


async def test_a_configured_http_host_wins_over_the_proxies(make_ui: UIFactory) -> None:
    async with make_ui({"http": {"host": "https://pull.example:8443"}}) as c:
        await push_image(c, "team/app", "v1")
        r = await c.get("/ui/repository", params={"name": "team/app"}, headers=TWO_PROXIES)
        assert "docker pull pull.example:8443/team/app:v1" in r.text
        r = await c.post("/v2/team/app/blobs/uploads/", headers=TWO_PROXIES)
        assert r.headers["Location"].startswith("https://pull.example:8443/v2/team/app/blobs/uploads/")
