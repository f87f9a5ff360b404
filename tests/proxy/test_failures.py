"""An upstream that fails: stale-if-error for what is cached, clear errors for what is not, and
nothing cached from a blob with wrong bytes or a body cut short."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from dockyard.oci.digest import Digest
from dockyard.oci.mediatypes import OCI_MANIFEST
from dockyard.proxy.inflight import FillFailed
from tests.api.helpers import error_codes
from tests.proxy.conftest import Proxy, Upstream
from tests.proxy.images import push
from tests.proxy.test_pull import pull

pytestmark = pytest.mark.anyio
ACCEPT = {"Accept": OCI_MANIFEST}


@pytest.mark.parametrize("failure", ["down", 500, 503, 429, 401])
async def test_stale_if_error_serves_cached_and_names_the_upstream_for_the_rest(
    make_upstream: Callable[..., Upstream],
    make_proxy: Callable[..., Proxy],
    failure: str | int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    up = make_upstream()
    async with up.client() as c:
        cached = await push(c, "library/web", "1", seed="c")
        await push(c, "library/web", "2", seed="u")
    proxy = make_proxy({"docker.io": (up, {"revalidate": 0})})
    await pull(proxy, "docker.io/library/web", "1")
    if failure == "down":
        up.down = True
    else:
        up.status = int(failure)

    # Cached: by tag (its revalidation fails: served stale, with a warning) and by digest.
    assert await pull(proxy, "docker.io/library/web", "1") == {cached.digest: cached.manifest, **cached.blobs}
    assert await pull(proxy, "docker.io/library/web", cached.digest)
    assert any("serving the cached docker.io/library/web:1" in r.getMessage() for r in caplog.records)

    # Not cached: an OCI error naming the upstream and what it answered.
    r = await proxy.client.get("/v2/docker.io/library/web/manifests/2", headers=ACCEPT)
    expected = 429 if failure == 429 else 502
    assert r.status_code == expected, r.text
    assert error_codes(r) == ["TOOMANYREQUESTS" if failure == 429 else "UNAVAILABLE"]
    message = r.json()["errors"][0]["message"]
    assert "http://docker.io.up.test" in message
    assert ("ConnectError" if failure == "down" else f"HTTP {failure}") in message
    r = await proxy.client.get(f"/v2/docker.io/library/web/blobs/sha256:{'0' * 64}")
    assert r.status_code == expected


async def test_upstream_404_is_unknown_not_unavailable(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    proxy = make_proxy({"docker.io": (make_upstream(), {})})
    r = await proxy.client.get("/v2/docker.io/library/nothing/manifests/1", headers=ACCEPT)
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = await proxy.client.get(f"/v2/docker.io/library/nothing/blobs/sha256:{'1' * 64}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
async def test_a_broken_blob_leaves_nothing_cached_and_the_next_pull_works(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy], fault: str
) -> None:
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/big", "1", seed="b", sizes=(700_000,))
    proxy = make_proxy({"docker.io": (up, {})})
    layer = image.layers[0]
    setattr(up, fault, True)
    # The client is sent the bytes received so far but never the last one: its body is short.
    with pytest.raises(FillFailed):
        await proxy.client.get(f"/v2/docker.io/library/big/blobs/{layer}")
    registry = proxy.services.registry
    assert await registry.blobs.size_global(Digest.parse(layer)) is None
    r = await proxy.client.head(f"/v2/docker.io/library/big/blobs/{layer}")
    assert r.status_code == 200  # a HEAD asks the upstream; nothing local
    assert await registry.blobs.size_global(Digest.parse(layer)) is None

    setattr(up, fault, False)
    r = await proxy.client.get(f"/v2/docker.io/library/big/blobs/{layer}")
    assert r.status_code == 200 and r.content == image.blobs[layer]
    assert await registry.blobs.size_global(Digest.parse(layer)) == len(image.blobs[layer])
    assert up.count("GET", layer) == 2


async def test_an_invalid_manifest_upstream_is_not_cached(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    """An upstream answering a digest request with other bytes is refused, not stored."""
    up = make_upstream()
    async with up.client() as c:
        image = await push(c, "library/m", "1", seed="m", sizes=(10,))
    proxy = make_proxy({"docker.io": (up, {})})
    other = "sha256:" + "2" * 64

    class Liar(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=image.manifest, headers={"Content-Type": OCI_MANIFEST})

    proxy.services.model.router.upstreams[0].client._transport = Liar()  # type: ignore[attr-defined]
    r = await proxy.client.get(f"/v2/docker.io/library/m/manifests/{other}")
    assert r.status_code == 502 and "not the one asked for" in r.text
    assert not await proxy.services.registry.manifests.exists("docker.io/library/m", Digest.parse(other))
