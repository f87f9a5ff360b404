"""Issue #18, findings 2, 3 and 9 (duplicate keys): hostile manifests are refused with 400
MANIFEST_INVALID; hostile configs and index platforms are stored (blobs are opaque) and every
page, listing and inspection of the repository still answers, showing the odd values as text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.helpers import OCI_CONFIG, OCI_MANIFEST, descriptor, error_codes, push_blob
from tests.hostile.conftest import ClientFactory
from tests.hostile.reads import push_config_image, push_index, read_urls, server_errors, statuses

pytestmark = pytest.mark.anyio


async def _manifest_with(client: Any, name: str) -> dict[str, Any]:
    config = b'{"os":"linux","architecture":"amd64"}'
    await push_blob(client, name, config)
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [],
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda valid: b"[" * 10_000 + b"]" * 10_000, "more than 64 levels deep"),
        (lambda valid: valid[:-1] + b', "x": ' + b"7" * 5000 + b"}", "more than 64 digits"),
        (lambda valid: valid[:-1] + b', "layers": []}', "the key 'layers' appears twice"),
        (lambda valid: valid[:-1] + b', "x": "\xff"}', "not UTF-8"),
        (lambda valid: valid[:-1] + b', "x": ' + b"[" * 65 + b"]" * 65 + b"}", "more than 64 levels deep"),
    ],
    ids=["deep-10000", "int-5000-digits", "duplicate-layers", "not-utf8", "deep-66"],
)
async def test_hostile_manifest_is_refused_with_manifest_invalid(
    make_client: ClientFactory, build: Any, message: str
) -> None:
    async with make_client() as client:
        valid = json.dumps(await _manifest_with(client, "a/b")).encode()
        r = await client.put(
            "/v2/a/b/manifests/t", content=build(valid), headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 400, r.text
        assert error_codes(r) == ["MANIFEST_INVALID"]
        assert message in r.json()["errors"][0]["message"]
        # The valid one still goes in, byte for byte.
        r = await client.put("/v2/a/b/manifests/t", content=valid, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201
        assert (await client.get("/v2/a/b/manifests/t")).content == valid


POISONED_CONFIGS = {
    "deep-10000": b"[" * 10_000 + b"]" * 10_000,
    "deep-object": b'{"os":' * 5000 + b"1" + b"}" * 5000,
    "wrong-types": json.dumps({"os": {"x": 1}, "architecture": 5, "config": "str", "history": 7}).encode(),
    "odd-settings": json.dumps(
        {
            "os": "linux",
            "architecture": "amd64",
            "config": {"Labels": ["a"], "Env": "A=1", "Entrypoint": {"a": 1}},
        }
    ).encode(),
    "huge-int": b'{"os":"linux","architecture":' + b"9" * 5000 + b"}",
    "not-utf8": b'{"os":"\xff\xfe","architecture":"amd64"}',
    "not-object": b"[1, 2, 3]",
}


@pytest.mark.parametrize("mode", ["none", "htpasswd"])
@pytest.mark.parametrize("case", list(POISONED_CONFIGS))
async def test_poisoned_config_breaks_no_read_route(make_client: ClientFactory, case: str, mode: str) -> None:
    async with make_client() as pusher:
        r, digest = await push_config_image(pusher, "p/img", "poisoned", POISONED_CONFIGS[case])
        assert r.status_code == 201  # a config is an opaque blob: accepted
        await push_config_image(pusher, "p/img", "fine", b'{"os":"linux","architecture":"arm64"}')
    async with make_client(mode) as client:
        auth = ("alice", "pw-alice") if mode == "htpasswd" else None
        client.auth = auth  # type: ignore[assignment]
        found = await statuses(client, read_urls("p/img", "poisoned", digest))
        assert not server_errors(found), found
        if mode == "none":
            assert all(status == 200 for status in found.values()), found
            tags = (await client.get("/v2/repositories/p/img/tags/")).json()["results"]
            assert {t["name"] for t in tags} == {"poisoned", "fine"}


async def test_wrong_typed_config_shows_unknown_on_the_image_page(make_client: ClientFactory) -> None:
    async with make_client() as client:
        await push_config_image(client, "p/img", "t", POISONED_CONFIGS["wrong-types"])
        page = await client.get("/ui/image", params={"name": "p/img", "ref": "t"})
        assert page.status_code == 200
        assert "unknown/unknown" in page.text
        inspect = (await client.get("/admin/v1/repositories/p/img/manifests/t")).json()
        assert inspect["platforms"] == ["unknown/unknown"]
        assert inspect["history"] == [] and inspect["labels"] == {}
        await push_config_image(client, "p/img", "u", POISONED_CONFIGS["odd-settings"])
        inspect = (await client.get("/admin/v1/repositories/p/img/manifests/u")).json()
        assert (inspect["entrypoint"], inspect["env"], inspect["labels"]) == (['{"a": 1}'], ["A=1"], {})


@pytest.mark.parametrize(
    "platform",
    [
        {"os": {"a": 1}, "architecture": ["x"], "variant": 5},
        {"os": "linux", "architecture": ["x"], "variant": 5, "os.features": {"a": 1}, "features": 3},
        {"os": "linux", "architecture": "amd64", "os.version": ["1"]},
        "not an object",
        [1, 2],
    ],
)
async def test_odd_index_platform_breaks_no_read_route(make_client: ClientFactory, platform: Any) -> None:
    async with make_client() as client:
        r, digest = await push_index(client, "p/idx", "multi", platform)
        assert r.status_code in (201, 400), r.text
        if r.status_code == 400:  # platform must be an object: refused at push
            assert error_codes(r) == ["MANIFEST_INVALID"]
            return
        found = await statuses(client, read_urls("p/idx", "multi", digest))
        assert all(status == 200 for status in found.values()), found
