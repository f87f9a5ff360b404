"""Sparse manifests: an index or image whose descriptors are not all in the repository.

Refused by default (400, one ``MANIFEST_BLOB_UNKNOWN`` per missing descriptor); accepted when
configured: ``validation.manifests.indexes.platforms`` (distribution 3's ``all``/``none``/``list``)
for indexes, ``validation.manifests.images.sparse`` for images. Mirrors the spec main conformance
"sparse" data: an image missing one layer (``sparse-image``) and an index naming an image that
was never pushed (``sparse-index``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from dockyard.config import ConfigError, parse_config
from tests.api.conftest import AppFactory
from tests.api.helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    error_codes,
    push_blob,
    push_image,
)

pytestmark = pytest.mark.anyio
AMD = {"os": "linux", "architecture": "amd64"}
ARM = {"os": "linux", "architecture": "arm64"}
ABSENT = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "never": "pushed"}).encode()


def validation(indexes: str | None = None, sparse: bool | None = None, **extra: Any) -> dict[str, Any]:
    manifests: dict[str, Any] = {}
    if indexes is not None:
        manifests["indexes"] = {"platforms": indexes, **extra}
    if sparse is not None:
        manifests["images"] = {"sparse": sparse}
    return {"validation": {"manifests": manifests}}


async def sparse_index(client: httpx.AsyncClient, name: str) -> tuple[str, bytes, str]:
    """Push the amd64 image; return (its digest, an index naming it and an absent arm64 image,
    the absent child's digest)."""
    amd, amd_body = await push_image(client, name, None, seed="amd")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, amd_body, platform=AMD),
            descriptor(OCI_MANIFEST, ABSENT, platform=ARM),
        ],
    }
    return amd, json.dumps(index).encode(), digest_of(ABSENT)


async def sparse_image(client: httpx.AsyncClient, name: str) -> tuple[bytes, str]:
    """An image whose config and first layer are pushed, its second layer not."""
    config = json.dumps({**AMD, "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    present, absent = b"present layer" * 20, b"absent layer" * 20
    await push_blob(client, name, config)
    await push_blob(client, name, present)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, present), descriptor(OCI_LAYER, absent)],
        }
    ).encode()
    return body, digest_of(absent)


async def put(client: httpx.AsyncClient, name: str, ref: str, body: bytes, media_type: str) -> httpx.Response:
    return await client.put(f"/v2/{name}/manifests/{ref}", content=body, headers={"Content-Type": media_type})


async def test_refused_by_default(client: httpx.AsyncClient) -> None:
    _, index, absent_child = await sparse_index(client, "strict")
    r = await put(client, "strict", "sparse-index", index, OCI_INDEX)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"] == absent_child
    image, absent_layer = await sparse_image(client, "strict")
    r = await put(client, "strict", "sparse-image", image, OCI_MANIFEST)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"] == absent_layer


async def test_indexes_none_accepts_a_sparse_index(make_client: AppFactory) -> None:
    async with make_client(validation("none")) as client:
        amd, index, absent_child = await sparse_index(client, "mirror")
        r = await put(client, "mirror", "sparse-index", index, OCI_INDEX)
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == digest_of(index)
        got = await client.get("/v2/mirror/manifests/sparse-index", headers={"Accept": OCI_INDEX})
        assert got.status_code == 200 and got.content == index
        assert (await client.head(f"/v2/mirror/manifests/{amd}")).status_code == 200
        r = await client.get(f"/v2/mirror/manifests/{absent_child}")  # pulling the absent platform
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
        # Images still need their blobs: the two keys are separate.
        image, _ = await sparse_image(client, "mirror")
        assert (await put(client, "mirror", "sparse-image", image, OCI_MANIFEST)).status_code == 400


async def test_indexes_list_checks_only_the_listed_platforms(make_client: AppFactory) -> None:
    async with make_client(
        validation("LIST", platformlist=[{"architecture": "amd64", "os": "linux"}])
    ) as client:
        _, index, _ = await sparse_index(client, "listed")
        assert (await put(client, "listed", "ok", index, OCI_INDEX)).status_code == 201
        # arm64 listed too: the absent arm64 child is refused.
    async with make_client(validation("list", platformlist=[AMD, ARM])) as client:
        _, index, absent_child = await sparse_index(client, "listed")
        r = await put(client, "listed", "no", index, OCI_INDEX)
        assert r.status_code == 400 and r.json()["errors"][0]["detail"] == absent_child


async def test_indexes_all_is_the_default_spelled_out(make_client: AppFactory) -> None:
    async with make_client(validation("all")) as client:
        _, index, _ = await sparse_index(client, "all")
        assert (await put(client, "all", "no", index, OCI_INDEX)).status_code == 400


async def test_images_sparse_accepts_missing_blobs(make_client: AppFactory) -> None:
    async with make_client(validation(sparse=True)) as client:
        image, absent_layer = await sparse_image(client, "part")
        r = await put(client, "part", "sparse-image", image, OCI_MANIFEST)
        assert r.status_code == 201, r.text
        got = await client.get("/v2/part/manifests/sparse-image", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200 and got.content == image
        r = await client.get(f"/v2/part/blobs/{absent_layer}")  # where a pull of it fails
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
        # Indexes still need their children.
        _, index, _ = await sparse_index(client, "part")
        assert (await put(client, "part", "sparse-index", index, OCI_INDEX)).status_code == 400


@pytest.mark.parametrize(
    ("tree", "fragment"),
    [
        (validation("some"), "platforms"),
        (validation("list"), "platformlist"),
        (validation("list", platformlist=[{"os": "linux"}]), "architecture"),
        ({"validation": {"manifests": {"images": {"sparse": "maybe"}}}}, "sparse"),
        ({"validation": {"manifests": {"blobs": {}}}}, "blobs"),
    ],
)
def test_bad_configuration_is_named(tree: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config({"storage": {"inmemory": {}}, **tree})
