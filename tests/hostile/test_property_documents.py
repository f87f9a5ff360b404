"""Property: whatever JSON a client pushes as a manifest, an image config or an index entry, the
push answers < 500 and afterwards every read route of the repository (Hub, UI, admin, OCI)
answers < 500. Hypothesis makes the documents (tests/hostile/strategies.py)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx
import pytest
from hypothesis import given

from tests.api.helpers import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of, push_blob
from tests.fuzzing import budget
from tests.hostile.conftest import AppFactory, client_for
from tests.hostile.reads import read_urls, server_errors, statuses
from tests.hostile.strategies import CONFIG_TEMPLATE, hostile_bytes, index_template, manifest_template

pytestmark = [pytest.mark.anyio, pytest.mark.fuzz]
_COUNTER = itertools.count()
LAYER = b"a layer"
GOOD_CONFIG = json.dumps({"os": "linux", "architecture": "amd64"}).encode()


async def _put(
    client: httpx.AsyncClient, name: str, ref: str, body: bytes, media_type: str
) -> httpx.Response:
    return await client.put(f"/v2/{name}/manifests/{ref}", content=body, headers={"Content-Type": media_type})


async def _check_reads(client: httpx.AsyncClient, name: str, tag: str, digest: str) -> None:
    found = await statuses(client, read_urls(name, tag, digest))
    assert not server_errors(found), found


class Rotating:
    """A fresh app on a fresh storage root every ``EVERY`` examples: the repositories the examples
    push pile up, and listings that walk all of them (usage, catalog) would make a long ``make
    fuzz`` run quadratic."""

    EVERY = 50

    def __init__(self, make_app: AppFactory, root: Path) -> None:
        self.make_app = make_app
        self.root = root
        self.calls = 0
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None or self.calls % self.EVERY == 0:
            storage = {"filesystem": {"rootdirectory": str(self.root / f"root-{self.calls}"), "fsync": False}}
            self._client = client_for(self.make_app("none", {"log": {"level": "error"}, "storage": storage}))
        self.calls += 1
        return self._client


@pytest.fixture
def apps(make_app: AppFactory, tmp_path: Path) -> Rotating:
    return Rotating(make_app, tmp_path)


@budget(40)
@given(
    body=hostile_bytes(manifest_template(descriptor(OCI_CONFIG, GOOD_CONFIG), descriptor(OCI_LAYER, LAYER)))
)
async def test_hostile_manifest_never_500(apps: Rotating, body: bytes) -> None:
    app_client = apps.client()
    name = f"m{next(_COUNTER)}/img"
    await push_blob(app_client, name, GOOD_CONFIG)
    await push_blob(app_client, name, LAYER)
    r = await _put(app_client, name, "t", body, OCI_MANIFEST)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["errors"][0]["code"] in ("MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN")
    await _check_reads(app_client, name, "t", digest_of(body))


@budget(40)
@given(config=hostile_bytes(CONFIG_TEMPLATE))
async def test_hostile_config_never_500(apps: Rotating, config: bytes) -> None:
    app_client = apps.client()
    name = f"c{next(_COUNTER)}/img"
    await push_blob(app_client, name, config)
    await push_blob(app_client, name, LAYER)
    manifest = json.dumps(
        manifest_template(descriptor(OCI_CONFIG, config), descriptor(OCI_LAYER, LAYER))
    ).encode()
    r = await _put(app_client, name, "t", manifest, OCI_MANIFEST)
    assert r.status_code == 201, r.text  # a config is an opaque blob
    await _check_reads(app_client, name, "t", digest_of(manifest))


# The index's one child: a valid image, the same bytes in every example.
CHILD = json.dumps(
    manifest_template(descriptor(OCI_CONFIG, GOOD_CONFIG), descriptor(OCI_LAYER, LAYER))
).encode()
ENTRY = {
    "mediaType": OCI_MANIFEST,
    "digest": digest_of(CHILD),
    "size": len(CHILD),
    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8", "os.features": ["x"]},
}


@budget(30)
@given(body=hostile_bytes(index_template(ENTRY)))
async def test_hostile_index_entry_never_500(apps: Rotating, body: bytes) -> None:
    app_client = apps.client()
    name = f"i{next(_COUNTER)}/img"
    await push_blob(app_client, name, GOOD_CONFIG)
    await push_blob(app_client, name, LAYER)
    assert (await _put(app_client, name, "child", CHILD, OCI_MANIFEST)).status_code == 201
    r = await _put(app_client, name, "t", body, OCI_INDEX)
    assert r.status_code < 500, r.text
    await _check_reads(app_client, name, "t", digest_of(body))
