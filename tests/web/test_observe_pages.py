"""The administrators' event-queue and audit pages in process, over the whole application
(``build_app``): who may see them, what they show, redelivery from a worker that is not the sender,
and the audit log's filters and server-side paging."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.app import build_app, create_services
from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.config import parse_config
from dockyard.notify.deliver import Deliverer
from dockyard.services import Services
from tests.api.helpers import push_image
from tests.servers.dockyard import deep_merge, free_port
from tests.web.test_pages import csrf_of

pytestmark = pytest.mark.anyio
ALICE = ("alice", "pw-alice")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def services_of(tmp_path: Path, extra: dict[str, Any]) -> Services:
    users = HtpasswdFile(tmp_path / "htpasswd")
    if not (tmp_path / "htpasswd").exists():
        users.set_password("alice", "pw-alice", cost=4, create=True)
        users.set_password("bob", "pw-bob", cost=4, create=True)
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}},
        "auth": {
            "htpasswd": {"path": str(tmp_path / "htpasswd")},
            "robots": {"path": str(tmp_path / "robots.json")},
            "access": {
                "admins": ["alice"],
                "rules": [{"repositories": ["**"], "actions": ["pull"], "users": ["bob"]}],
            },
        },
    }
    return create_services(parse_config(deep_merge(tree, extra)))


def client_of(services: Services, auth: Any = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(services))
    return httpx.AsyncClient(transport=transport, base_url="http://registry.test", auth=auth)


async def log_in(client: httpx.AsyncClient, user: str, password: str) -> str:
    token = csrf_of((await client.get("/ui/login")).text)
    answer = await client.post("/ui/login", data={"username": user, "password": password, "csrf": token})
    assert answer.status_code == 303, answer.text
    return token


async def test_event_queue_shows_what_waits_and_redelivers_from_any_worker(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt fails
    hook = {"name": "ci", "url": down, "threshold": 1, "backoff": "1h", "format": "cloudevents-batch"}
    extra = {"notifications": {"endpoints": [hook]}}
    ui, sender = services_of(tmp_path, extra), services_of(tmp_path, extra)  # two workers, one store
    leader = sender.notifier.deliverer if sender.notifier else None
    assert isinstance(leader, Deliverer)
    try:
        async with client_of(ui, ALICE) as registry:
            await push_image(registry, "team/app", "v1")
        assert await leader._lead()
        assert await leader.step() is False  # failed; the next try in an hour
        async with client_of(ui) as browser:
            await log_in(browser, "bob", "pw-bob")
            assert (await browser.get("/ui/events")).status_code == 404  # not an administrator
            assert "/ui/events" not in (await browser.get("/")).text
        async with client_of(ui) as browser:
            token = await log_in(browser, "alice", "pw-alice")
            assert 'href="/ui/events"' in (await browser.get("/")).text
            page = await browser.get("/ui/events")
            assert page.status_code == 200
            html = page.text
            assert 'data-endpoint="ci"' in html and "failing" in html and "cloudevents-batch" in html
            assert re.search(r'data-field="pending">3<', html)  # config, layer, manifest
            assert re.search(r'data-field="failures">1<', html) and "cannot connect" in html
            assert html.count('<td class="mono">team/app</td>') == 3
            refused = await browser.post("/ui/events/redeliver", data={"endpoint": "ci", "csrf": "forged"})
            assert refused.status_code == 403
            unknown = await browser.post("/ui/events/redeliver", data={"endpoint": "nope", "csrf": token})
            assert unknown.status_code == 404
            answer = await browser.post("/ui/events/redeliver", data={"endpoint": "ci", "csrf": token})
            assert answer.status_code == 303 and answer.headers["location"].startswith(
                "/ui/events?redelivered="
            )
            assert (
                "Backoff cleared for ci: 3 waiting events go now"
                in (await browser.get(answer.headers["location"])).text
            )
        # The sender, another worker that kept the endpoint's state in memory, tries again now.
        assert await leader.step() is False
        [status] = await leader.status()
        assert status["failures"] == 1 and status["pending"] == 3
        assert await leader.step() is False  # and then backs off again
        assert (await leader.status())[0]["failures"] == 1
    finally:
        for services in (ui, sender):
            assert services.notifier is not None
            await services.notifier.deliverer.stop()


async def test_audit_page_filters_and_pages_newest_first(tmp_path: Path) -> None:
    services = services_of(tmp_path, {"audit": {"enabled": True}})
    async with client_of(services, ALICE) as registry:
        for n in range(26):
            await push_image(registry, "team/app", f"v{n}")
        await push_image(registry, "team/db", "v1", seed="c")
        for _ in range(2):
            answer = await registry.get("/v2/", auth=("mallory", "guess"))
            assert answer.status_code == 401
    async with client_of(services) as browser:
        await log_in(browser, "bob", "pw-bob")
        assert (await browser.get("/ui/audit")).status_code == 404
    async with client_of(services) as browser:
        await log_in(browser, "alice", "pw-alice")

        async def rows(**params: Any) -> list[str]:
            page = await browser.get("/ui/audit", params=params)
            assert page.status_code == 200
            return re.findall(
                r'<tr data-action="([^"]+)"><td><time datetime="[^"]+">[^<]+</time></td><td>([^<]+)</td>',
                page.text,
            )  # type: ignore[return-value]

        assert await rows(actor="mallory") == [("login-failed", "mallory")] * 2
        pushes = await rows(repository="team/app", action="push")
        assert pushes == [("push", "alice")] * 25  # the first page of 26
        assert await rows(repository="team/app", action="push", page=2) == [("push", "alice")]
        page = await browser.get("/ui/audit", params={"repository": "team/app", "size": 50})
        assert page.text.index(">v25 ") < page.text.index(">v24 ") < page.text.index(">v0 ")  # newest first
        assert await rows(action="push", since="1h", repository="team/db") == [("push", "alice")]
        assert len(await rows(size=100)) == 26 + 1 + 2 + 2  # and the logins of alice and bob (once an hour)
        assert await rows(actor="nobody") == []
        assert "No records match" in (await browser.get("/ui/audit", params={"actor": "nobody"})).text
        assert 'href="/ui/audit"' in (await browser.get("/")).text
