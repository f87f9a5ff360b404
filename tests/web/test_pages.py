"""The web UI in process: pages, server-side search and paging, login sessions, CSRF, deletes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import push_image
from tests.web.conftest import UIFactory

pytestmark = pytest.mark.anyio


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_pages_render_and_page_on_the_server(make_ui: UIFactory) -> None:
    async with make_ui() as c:
        for i in range(30):
            await push_image(c, f"team/app{i:02d}", "v1")
        r = await c.get("/")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.text.count('class="repo-link"') == 25 and "1\u201325 of 30" in r.text
        r = await c.get("/", params={"page": 2})
        assert r.text.count('class="repo-link"') == 5 and "team/app29" in r.text
        r = await c.get("/", params={"q": "app1", "sort": "-name"})
        names = re.findall(r'<span class="repo-icon" aria-hidden="true"></span>([^<]+)</a>', r.text)
        assert names == [f"team/app{i}" for i in range(19, 9, -1)]
        r = await c.get("/ui/repository", params={"name": "team/app01"})
        assert r.status_code == 200 and "docker pull registry.test/team/app01:v1" in r.text
        r = await c.get("/ui/image", params={"name": "team/app01", "ref": "v1"})
        assert r.status_code == 200 and "linux/amd64" in r.text and "Layers" in r.text
        r = await c.get("/ui/usage")
        assert r.status_code == 200 and "<svg" in r.text
        assert (await c.get("/ui/repository", params={"name": "nope/x"})).status_code == 404
        assert (await c.get("/ui/static/app.js")).status_code == 200
        assert (await c.get("/ui/static/../app.py")).status_code == 404
        assert (await c.get("/v2/_catalog")).status_code == 200  # the registry is still there


async def test_ui_can_be_turned_off(make_ui: UIFactory) -> None:
    async with make_ui({"ui": {"enabled": False}}) as c:
        r = await c.get("/")
        assert r.json() == {"status": "ok"}


async def test_delete_needs_csrf_and_confirmation(make_ui: UIFactory) -> None:
    async with make_ui() as c:
        await push_image(c, "team/app", "v1")
        await push_image(c, "team/app", "v2", seed="b")
        page = await c.get("/ui/repository", params={"name": "team/app"})
        token = csrf_of(page.text)
        assert c.cookies.get("dockyard_csrf") == token
        form = {"name": "team/app", "tag": "v1"}
        r = await c.post("/ui/delete", data={**form, "csrf": "forged"})
        assert r.status_code == 403
        r = await c.post("/ui/delete", data={**form, "csrf": token})
        assert r.status_code == 200 and "Delete tag?" in r.text  # asked first (no JavaScript needed)
        r = await c.post(
            "/ui/delete",
            data={**form, "csrf": token, "confirm": "yes"},
            headers={"Origin": "http://evil.test"},
        )
        assert r.status_code == 403
        r = await c.post("/ui/delete", data={**form, "csrf": token, "confirm": "yes"})
        assert r.status_code == 303 and "deleted=tag+v1" in r.headers["location"]
        assert (await c.get("/v2/team/app/tags/list")).json()["tags"] == ["v2"]


async def test_deletes_disabled(make_ui: UIFactory) -> None:
    async with make_ui({"storage": {"delete": {"enabled": False}}}) as c:
        await push_image(c, "team/app", "v1")
        page = await c.get("/ui/repository", params={"name": "team/app"})
        assert "btn-danger-ghost" not in page.text
        r = await c.post(
            "/ui/delete",
            data={"name": "team/app", "tag": "v1", "csrf": c.cookies["dockyard_csrf"], "confirm": "yes"},
        )
        assert r.status_code == 405


async def test_login_session_and_visibility(make_ui: UIFactory) -> None:
    async with make_ui(auth=True) as c:
        admin = ("alice", "pw-alice")
        for name in ("pub/hello", "team/app"):
            client = httpx.AsyncClient(transport=c._transport, base_url=str(c.base_url), auth=admin)
            await push_image(client, name, "v1")
        r = await c.get("/")
        assert "pub/hello" in r.text and "team/app" not in r.text  # anonymous: public only
        r = await c.get("/ui/repository", params={"name": "team/app"})
        assert r.status_code == 303 and "/ui/login" in r.headers["location"]
        login = await c.get("/ui/login")
        token = csrf_of(login.text)
        r = await c.post("/ui/login", data={"username": "alice", "password": "nope", "csrf": token})
        assert r.status_code == 401 and "Wrong username" in r.text
        r = await c.post(
            "/ui/login", data={"username": "bob", "password": "pw-bob", "csrf": token, "next": "//evil.test/"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "dockyard_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        r = await c.get("/")
        assert "team/app" in r.text and ">bob<" in r.text
        r = await c.get("/ui/repository", params={"name": "team/app"})
        assert r.status_code == 200 and "btn-danger-ghost" not in r.text  # bob may pull, not delete
        r = await c.post(
            "/ui/delete", data={"name": "team/app", "tag": "v1", "csrf": token, "confirm": "yes"}
        )
        assert r.status_code == 403
        session = c.cookies.get("dockyard_session")
        assert session
        r = await c.post("/ui/logout", data={"csrf": token})
        assert r.status_code == 303
        assert "team/app" not in (await c.get("/")).text
        # A tampered session is anonymous.
        c.cookies.set("dockyard_session", session[:-2] + "xx")
        assert "team/app" not in (await c.get("/")).text


async def test_pulled_column_after_a_pull_the_way_docker_pulls(make_ui: UIFactory) -> None:
    """docker pulls a tag with a HEAD by tag, then a GET by digest: the tag's row shows it pulled."""
    async with make_ui() as c:
        await push_image(c, "team/app", "v1")

        def pulled_cell(html: str) -> str:
            row = re.search(r"<tr data-tag=\"v1\".*?</tr>", html, re.S)
            assert row, html
            return row.group(0).split("</td>")[4]  # digest, size, platforms, pushed, pulled

        page = await c.get("/ui/repository", params={"name": "team/app"})
        assert "never" in pulled_cell(page.text)
        digest = (await c.head("/v2/team/app/manifests/v1")).headers["Docker-Content-Digest"]
        assert (await c.get(f"/v2/team/app/manifests/{digest}")).status_code == 200
        page = await c.get("/ui/repository", params={"name": "team/app"})
        assert "never" not in pulled_cell(page.text) and "<time" in pulled_cell(page.text)


async def test_vulnerabilities_on_the_image_and_repository_pages(make_ui: UIFactory, tmp_path: Path) -> None:
    """From the last scan: severity badges, the findings table filtered on the server, the
    SBOM's packages with their layer, and each tag's worst severity."""
    from tests.scan.test_vulns_report import setup

    digest, _ = await setup(tmp_path / "root")  # apps/web:v1 matched; apps/web:v2 only queued
    await failed_scan(tmp_path / "root")  # apps/web:v3: Syft failed
    async with make_ui({"scan": {"enabled": True}}) as c:
        r = await c.get("/ui/image", params={"name": "apps/web", "ref": "v1"})
        assert r.status_code == 200
        badges = re.findall(r'class="sev sev-(\w+)[^"]*" title="\w+">\w+ <b>(\d+)</b>', r.text)
        assert badges == [
            ("critical", "1"),
            ("high", "0"),
            ("medium", "1"),
            ("low", "0"),
            ("none", "0"),
            ("unknown", "1"),
        ]
        rows = re.findall(r'<tr data-severity="(\w+)">.*?<th scope="row"[^>]*>([^<]+)</th>', r.text, re.S)
        assert rows == [("critical", "zlib1g"), ("medium", "jinja2"), ("unknown", "lodash")]
        assert "CVE-2099-0002, GHSA-aaaa-bbbb-cccc" in r.text and "1:1.2.13.dfsg-2" in r.text
        packages = re.findall(r'<tr><th scope="row" class="mono small">([^<]+)</th>', r.text)
        assert packages == ["jinja2", "lodash", "zlib1g"]

        r = await c.get("/ui/image", params={"name": "apps/web", "ref": "v1", "severity": "medium"})
        assert re.findall(r'<tr data-severity="(\w+)">', r.text) == ["critical", "medium"]
        r = await c.get("/ui/image", params={"name": "apps/web", "ref": "v1", "find": "cve-2099-0002"})
        assert re.findall(r'<tr data-severity="(\w+)">', r.text) == ["medium"]
        r = await c.get("/ui/image", params={"name": "apps/web", "ref": "v1", "find": "nothing-like-it"})
        assert "No findings match the filter." in r.text
        r = await c.get("/ui/image", params={"name": "apps/web", "ref": "v2"})
        assert "Not scanned yet." in r.text

        r = await c.get("/ui/repository", params={"name": "apps/web"})
        worst = dict(
            re.findall(
                r'data-tag="(\w+)">.*?<td>(?:<a class="sev sev-(\w+)"|<span class="muted)', r.text, re.S
            )
        )
        assert worst == {"v1": "critical", "v2": "", "v3": ""}
        assert ">critical 1</a>" in r.text and "not scanned" in r.text and "scan failed" in r.text
        r = await c.get("/ui/image", params={"name": "apps/web", "ref": "v3"})
        assert (
            "Not matched against advisories (scan failed)." in r.text
            and "syft exited with status 1" in r.text
        )
        r = await c.get("/ui/image", params={"name": "apps/web", "ref": digest})
        assert "Vulnerabilities" in r.text
    async with make_ui() as c:  # scanning off: no vulnerability section, no column
        r = await c.get("/ui/image", params={"name": "apps/web", "ref": "v1"})
        assert r.status_code == 200 and "Vulnerabilities" not in r.text
        r = await c.get("/ui/repository", params={"name": "apps/web"})
        assert "Vulnerabilities" not in r.text


async def failed_scan(root: Path) -> None:
    """``apps/web:v3`` pushed, and its scan recorded as failed (what a Syft failure leaves)."""
    from dockyard.app import create_services
    from dockyard.config import parse_config
    from dockyard.scan import create_queue
    from dockyard.scan.queue import QueuedScan
    from dockyard.testing.images import build_image
    from tests.scan.test_sbom import push

    tree = {"storage": {"filesystem": {"rootdirectory": str(root), "fsync": False}}}
    services = create_services(parse_config(tree))
    image = build_image("apps/web", "v3", [b"not a tar"], {"architecture": "amd64", "os": "linux"})
    digest = str(await push(services.registry, image, "v3"))
    queue = create_queue(services.config, services.driver, services.coordinator)
    failed = {
        "state": "failed",
        "images": [{"digest": digest, "state": "failed", "error": "syft exited with status 1"}],
    }
    await queue.finish(QueuedScan("apps/web", digest, "push", 1.0), failed, 2.0)
    await services.coordinator.close()
