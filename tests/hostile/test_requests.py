"""Issue #18, findings 1, 4, 5, 6, 8 and 9 (nosniff), and the per-row catch: each request of the
attack run, and the exact answer it gets now."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dockyard.oci.digest import Digest
from dockyard.storage import paths
from tests.api.helpers import digest_of, error_codes, push_blob, push_image
from tests.hostile.conftest import ClientFactory
from tests.hostile.reads import push_config_image

pytestmark = pytest.mark.anyio


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


# -- finding 1: open redirect on sign-in ---------------------------------------------------------

HOSTILE_NEXT = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nSet-Cookie: x=y",
    "/ /evil.example",
    "//evil.example",
    "/\\evil.example",
    "/a\\b",
    "http://evil.example/",
    "javascript:alert(1)",
    "/\x00",
    "/\u3000/evil.example",
]


@pytest.mark.parametrize("mode", ["none", "htpasswd"])
@pytest.mark.parametrize("target", HOSTILE_NEXT)
async def test_login_never_redirects_off_site(make_client: ClientFactory, mode: str, target: str) -> None:
    async with make_client(mode) as client:
        form = await client.get("/ui/login", params={"next": target})
        assert form.status_code == 200
        if mode == "htpasswd":
            assert 'name="next" value=""' in form.text  # the form does not carry it on
        credentials = {"username": "alice", "password": "pw-alice"}
        csrf = client.cookies["dockyard_csrf"]
        r = await client.post("/ui/login", data={"csrf": csrf, "next": target, **credentials})
        assert r.status_code == 303
        assert r.headers["location"] == "/"


async def test_login_keeps_a_same_origin_next(make_client: ClientFactory) -> None:
    async with make_client("htpasswd") as client:
        target = "/ui/image?name=a/b&ref=v1"
        form = await client.get("/ui/login", params={"next": target})
        assert 'name="next" value="/ui/image?name=a/b&amp;ref=v1"' in form.text
        data = {"csrf": _csrf(form.text), "next": target, "username": "alice", "password": "pw-alice"}
        r = await client.post("/ui/login", data=data)
        assert (r.status_code, r.headers["location"]) == (303, target)


# -- finding 4: Hub names validated before storage sees them --------------------------------------


@pytest.mark.parametrize("mode", ["none", "htpasswd"])
@pytest.mark.parametrize(
    "path",
    [
        "/v2/repositories/library/a%20b/",
        "/v2/repositories/library/a%00b/",
        "/v2/repositories/library/a%20b/tags/",
        "/v2/repositories/library/a%20b/tags/v1/",
        "/v2/namespaces/library/repositories/a%00b",
        "/v2/namespaces/library/repositories/a%0Db/tags",
        "/v2/repositories/Library/x/",
        "/v2/repositories/a%20b/x/tags/",
    ],
)
async def test_hub_route_with_invalid_name_is_name_invalid(
    make_client: ClientFactory, mode: str, path: str
) -> None:
    async with make_client(mode) as client:
        r = await client.get(path)  # anonymous
        assert r.status_code == 400, r.text
        assert error_codes(r) == ["NAME_INVALID"]


# -- finding 5: long static names ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a" * 300, "app.css" + "x" * 5000, "..%2Fapp.css", ".hidden", "app.css/x", ""]
)
async def test_unknown_static_file_is_404(make_client: ClientFactory, name: str) -> None:
    async with make_client() as client:
        r = await client.get("/ui/static/" + name)
        assert r.status_code == 404
        assert (await client.get("/ui/static/app.css")).status_code == 200


# -- finding 6: malformed references on the image page ---------------------------------------------


@pytest.mark.parametrize(
    ("ref", "status"),
    [
        ("sha256:zzz", 400),
        ("md5:abc", 400),
        ("sha256:" + "A" * 64, 400),
        ("bad$tag", 404),
        ("-x", 404),
        ("x" * 200, 404),
    ],
)
async def test_image_page_with_malformed_reference(make_client: ClientFactory, ref: str, status: int) -> None:
    async with make_client() as client:
        await push_image(client, "a/b", "v1")
        r = await client.get("/ui/image", params={"name": "a/b", "ref": ref})
        assert r.status_code == status, r.text


# -- finding 8: mount from= in every auth mode, before the challenge --------------------------------

BAD_FROM = ["a\x00b", "a\r\nb", 'a",realm="http://evil.example/token', "A", "a" * 300]


@pytest.mark.parametrize("mode", ["none", "htpasswd", "token"])
@pytest.mark.parametrize("source", BAD_FROM)
async def test_mount_from_invalid_name_is_name_invalid(
    make_client: ClientFactory, mode: str, source: str
) -> None:
    async with make_client(mode) as client:
        r = await client.post("/v2/a/b/blobs/uploads/", params={"mount": digest_of(b"x"), "from": source})
        assert r.status_code == 400, r.text
        assert error_codes(r) == ["NAME_INVALID"]
        assert "www-authenticate" not in r.headers


async def test_token_challenge_for_a_valid_from_names_it_once(make_client: ClientFactory) -> None:
    async with make_client("token") as client:
        r = await client.post("/v2/a/b/blobs/uploads/", params={"mount": digest_of(b"x"), "from": "c/d"})
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.count("realm=") == 1
        assert 'scope="repository:a/b:pull,push repository:c/d:pull"' in challenge


# -- finding 9: blobs are never sniffed --------------------------------------------------------------


async def test_blobs_are_served_with_nosniff(make_client: ClientFactory) -> None:
    async with make_client() as client:
        digest = await push_blob(client, "a/b", b"<html><script>alert(1)</script>")
        for r in [
            await client.get(f"/v2/a/b/blobs/{digest}"),
            await client.head(f"/v2/a/b/blobs/{digest}"),
            await client.get(f"/v2/a/b/blobs/{digest}", headers={"Range": "bytes=0-3"}),
        ]:
            assert r.status_code in (200, 206)
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["content-type"] == "application/octet-stream"


# -- one row failing marks the row, not the page -----------------------------------------------------


class _BrokenBlob:
    """A driver on which reading one blob fails in a way nothing expects."""

    def __init__(self, inner: Any, digest: str) -> None:
        self.inner = inner
        self.path = paths.blob_data(Digest.parse(digest))

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    async def get_content(self, path: str) -> bytes:
        if path == self.path:
            raise RuntimeError("disk controller on fire")
        data: bytes = await self.inner.get_content(path)
        return data


async def test_an_unexpected_error_in_one_row_marks_that_row(make_client: ClientFactory) -> None:
    async with make_client() as client:
        _, broken = await push_config_image(
            client, "p/img", "broken", b'{"os":"linux","architecture":"amd64"}'
        )
        await push_config_image(client, "p/img", "fine", b'{"os":"linux","architecture":"arm64"}')
    async with make_client(wrap=lambda d: _BrokenBlob(d, broken)) as client:
        tags = await client.get("/v2/repositories/p/img/tags/")
        assert tags.status_code == 200
        rows = {t["name"]: t for t in tags.json()["results"]}
        assert rows["broken"]["content_type"] == "unrecognized" and rows["broken"]["images"] == []
        assert [i["architecture"] for i in rows["fine"]["images"]] == ["arm64"]
        page = await client.get("/ui/repository", params={"name": "p/img"})
        assert page.status_code == 200
        assert page.text.count(">unreadable</span>") == 1
        admin = await client.get("/admin/v1/repositories/p/img/tags")
        assert admin.status_code == 200
        by_tag = {t["tag"]: t for t in admin.json()["tags"]} if isinstance(admin.json(), dict) else {}
        if by_tag:
            assert by_tag["broken"]["error"] == "unreadable" and "error" not in by_tag["fine"]


# -- found while moving every JSON reader onto oci/document: the admin API's request bodies ----------


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"dryRun": true, "dryRun": false}', b'{"dryRun": "\xff"}'])
async def test_admin_body_that_is_no_acceptable_json_is_400(make_client: ClientFactory, body: bytes) -> None:
    async with make_client() as client:
        for path in ("/admin/v1/gc", "/admin/v1/retention"):
            r = await client.post(path, content=body)
            assert r.status_code == 400, r.text
            assert error_codes(r) == ["BAD_REQUEST"]


# -- found by the UI route property test (test_property_routes.py) on its own: cookies ------------


@pytest.mark.parametrize(
    "cookie", [b"dockyard_session=.\x80", b"dockyard_session=a.\xe9\xff", b"dockyard_csrf=\xe9"]
)
async def test_non_ascii_cookies_are_ignored_not_500(make_client: ClientFactory, cookie: bytes) -> None:
    async with make_client("htpasswd") as client:
        page = await client.get("/ui/login", headers={"Cookie": cookie})  # type: ignore[dict-item]
        assert page.status_code == 200
        form = b"csrf=%C3%A9&username=alice&password=pw-alice"
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        r = await client.post("/ui/login", content=form, headers=headers)  # type: ignore[arg-type]
        assert r.status_code in (303, 403), r.text
