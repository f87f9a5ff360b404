"""Property: every route of the route table (api/routes.py) and of the web UI, called with any
method, hostile path parameters and hostile query parameters, answers < 500, in every auth mode.

The path of each route comes from TEMPLATES, checked against the table itself: a route added to
the table without a template fails test_every_route_has_a_template."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.api import routes
from dockyard.web.app import ROUTES as UI_ROUTES
from tests.api.helpers import push_image
from tests.fuzzing import budget
from tests.hostile.conftest import AppFactory, client_for
from tests.hostile.strategies import QUERY, SEGMENT

pytestmark = pytest.mark.anyio

TEMPLATES = {
    "base": "/v2/",
    "catalog": "/v2/_catalog",
    "hub-tags": "/v2/repositories/{namespace}/{repository}/tags/",
    "hub-tag": "/v2/repositories/{namespace}/{repository}/tags/{tag}/",
    "hub-repos": "/v2/repositories/{namespace}/",
    "hub-repo": "/v2/repositories/{namespace}/{repository}/",
    "hub-ns-tags": "/v2/namespaces/{namespace}/repositories/{repository}/tags",
    "hub-ns-tag": "/v2/namespaces/{namespace}/repositories/{repository}/tags/{tag}",
    "hub-ns-repos": "/v2/namespaces/{namespace}/repositories",
    "hub-ns-repo": "/v2/namespaces/{namespace}/repositories/{repository}",
    "openapi": "/openapi.json",
    "tags": "/v2/{name}/tags/list",
    "manifest": "/v2/{name}/manifests/{reference}",
    "upload-start": "/v2/{name}/blobs/uploads/",
    "upload": "/v2/{name}/blobs/uploads/{upload_id}",
    "blob": "/v2/{name}/blobs/{digest}",
    "referrers": "/v2/{name}/referrers/{digest}",
    "admin-gc": "/admin/v1/gc",
    "admin-retention": "/admin/v1/retention",
    "admin-usage": "/admin/v1/usage",
    "admin-quotas": "/admin/v1/quotas",
    "admin-audit": "/admin/v1/audit",
    "admin-notifications": "/admin/v1/notifications",
    "admin-proxy": "/admin/v1/proxy",
    "admin-proxy-cache": "/admin/v1/proxy/cache",
    "admin-proxy-purge": "/admin/v1/proxy/cache/purge",
    "admin-proxy-sync": "/admin/v1/proxy/sync",
    "admin-tags": "/admin/v1/repositories/{name}/tags",
    "admin-inspect": "/admin/v1/repositories/{name}/manifests/{reference}",
    "admin-vulnerabilities": "/admin/v1/repositories/{name}/vulnerabilities/{reference}",
    "admin-repository": "/admin/v1/repositories/{name}",
    "admin-vulndb": "/admin/v1/vulndb",
    "admin-scans": "/admin/v1/scans",
}
SAMPLE = {
    "namespace": "ns",
    "repository": "repo",
    "tag": "v1",
    "name": "a/b",
    "reference": "v1",
    "upload_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
    "digest": "sha256:" + "0" * 64,
}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def test_every_route_has_a_template() -> None:
    assert set(TEMPLATES) == {r.name for r in routes.ROUTES}
    for route in routes.ROUTES:
        path = TEMPLATES[route.name].format(**SAMPLE)
        found = routes.match(path)
        assert found is not None and found[0].name == route.name, (route.name, path)
        assert set(route.pattern.groupindex) <= set(SAMPLE)


# Cookie values as a browser (or anyone) may send them: header bytes are latin-1 to the app.
COOKIE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters=';,\\" '), max_size=60
)
Request = tuple[str, str, dict[str, str], bytes, dict[str, str]]


@st.composite
def api_request(draw: st.DrawFn) -> Request:
    route = draw(st.sampled_from(routes.ROUTES))
    values = {}
    for key in route.pattern.groupindex:
        raw = draw(SEGMENT | st.just(SAMPLE[key]))
        values[key] = quote(raw, safe="/" if draw(st.booleans()) else "")
    method = draw(st.sampled_from(list(route.methods)) | st.sampled_from(METHODS))
    body = draw(st.binary(max_size=64) | st.sampled_from([b"{}", b"[" * 5000, b'{"a":' + b"1" * 5000 + b"}"]))
    return method, TEMPLATES[route.name].format(**values), draw(QUERY), body, draw(AUTHORIZATION)


# Credentials of every shape: none, Basic of random bytes, bearer tokens that are no JWT, or
# JWT-shaped with hostile parts.
AUTHORIZATION = st.one_of(
    st.just({}),
    st.binary(max_size=40).map(lambda b: {"Authorization": "Basic " + base64.b64encode(b).decode()}),
    COOKIE.map(lambda t: {"Authorization": "Bearer " + t}),
    st.lists(
        st.binary(max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
        min_size=3,
        max_size=3,
    ).map(lambda parts: {"Authorization": "Bearer " + ".".join(parts)}),
    COOKIE.map(lambda t: {"Authorization": t}),
)


@st.composite
def token_request(draw: st.DrawFn) -> Request:
    """The built-in token server (token mode), outside the route table."""
    query = draw(QUERY)
    if draw(st.booleans()):
        query["scope"] = draw(SEGMENT)
    method = draw(st.sampled_from(["GET", "POST", "PUT"]))
    body = urlencode(draw(QUERY)).encode() if method == "POST" else b""
    return method, "/token", query, body, draw(AUTHORIZATION)


@st.composite
def ui_request(draw: st.DrawFn) -> Request:
    method, path = draw(st.sampled_from(list(UI_ROUTES)))
    if draw(st.integers(0, 5)) == 0:
        path = "/ui/static/" + quote(draw(SEGMENT), safe="")
    form = draw(QUERY)
    cookies = draw(
        st.dictionaries(st.sampled_from(["dockyard_session", "dockyard_csrf"]), COOKIE, max_size=2)
    )
    if "cookie:dockyard_csrf" in cookies and draw(st.booleans()):
        form["csrf"] = cookies["cookie:dockyard_csrf"]  # a matching pair gets past the first check
    body = urlencode(form).encode() if method == "POST" else b""
    return method, path, draw(QUERY), body, cookies


async def _assert_no_500(client: httpx.AsyncClient, request: Request) -> None:
    """``extra``: headers, and cookies as ``cookie:<name>`` keys; all sent as latin-1 bytes."""
    method, path, query, body, extra = request
    url = path + ("?" + urlencode(query) if query else "")
    headers: dict[str, bytes] = {
        k: v.encode("latin-1") for k, v in extra.items() if not k.startswith("cookie:")
    }
    if path.startswith("/ui/") or path == "/token":
        headers["Content-Type"] = b"application/x-www-form-urlencoded"
    cookies = [f"{k[7:]}={v}" for k, v in extra.items() if k.startswith("cookie:")]
    if cookies:
        headers["Cookie"] = "; ".join(cookies).encode("latin-1")
    r = await client.request(method, url, content=body or None, headers=headers)  # type: ignore[arg-type]
    assert r.status_code < 500, (method, url, extra, r.status_code, r.text[:300])


@pytest.fixture(params=["none", "htpasswd", "token"])
async def seeded(request: pytest.FixtureRequest, make_app: AppFactory) -> httpx.AsyncClient:
    """An app with one image in ``a/b`` (tag v1), so valid parts of a request reach real content."""
    async with client_for(make_app("none", {"log": {"level": "error"}})) as pusher:
        await push_image(pusher, "a/b", "v1")
    return client_for(make_app(request.param, {"log": {"level": "error"}}))


@pytest.mark.fuzz
@budget(80)
@given(request=api_request())
async def test_api_routes_never_500(
    seeded: httpx.AsyncClient, request: tuple[str, str, dict[str, str], bytes]
) -> None:
    await _assert_no_500(seeded, request)


@pytest.mark.fuzz
@budget(50)
@given(request=token_request())
async def test_token_server_never_500(seeded: httpx.AsyncClient, request: Request) -> None:
    await _assert_no_500(seeded, request)


@pytest.mark.fuzz
@budget(60)
@given(request=ui_request())
async def test_ui_routes_never_500(
    seeded: httpx.AsyncClient, request: tuple[str, str, dict[str, str], bytes]
) -> None:
    await _assert_no_500(seeded, request)
