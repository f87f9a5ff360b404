"""Untagging from the Hub API and from the UI goes through the registry model, so its event
subscribers hear of it as they do of an OCI ``DELETE`` of a tag."""

from __future__ import annotations

import re

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.config import parse_config
from dockyard.events import Event, TagDeleted
from dockyard.health import HealthApp
from dockyard.web.app import WebApp
from tests.api.helpers import push_image

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


async def test_hub_and_ui_untag_are_told_to_the_subscribers() -> None:
    services = create_services(parse_config({"storage": {"inmemory": {}}}))
    recorder = Recorder()
    services.registry.events = recorder
    app = WebApp(HealthApp(RegistryApp(services), services), services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reg.test") as c:
        for tag in ("v1", "v2", "v3"):
            await push_image(c, "web/site", tag, seed=tag)
        assert (await c.delete("/v2/repositories/web/site/tags/v1/")).status_code == 204
        assert (await c.delete("/v2/repositories/web/site/tags/v1/")).status_code == 404
        page = await c.get("/ui/repository", params={"name": "web/site"})
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found
        form = {"name": "web/site", "tag": "v2", "confirm": "yes", "csrf": found.group(1)}
        r = await c.post("/ui/delete", data=form)
        assert r.status_code == 303
        await c.delete("/v2/web/site/manifests/v3")
    deleted = [e for e in recorder.events if isinstance(e, TagDeleted)]
    assert deleted == [
        TagDeleted("web/site", "v1"),
        TagDeleted("web/site", "v2"),
        TagDeleted("web/site", "v3"),
    ]
