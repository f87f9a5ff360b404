"""A Helm chart pushed as an OCI artifact (what `helm push` writes) shows as a chart in the UI."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.helpers import descriptor, push_blob
from tests.regclient import digest_of
from tests.web.conftest import UIFactory

pytestmark = pytest.mark.anyio

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


async def _push_chart(c: httpx.AsyncClient, name: str, tag: str, config: bytes) -> str:
    content = b"\x1f\x8b not really a tarball"
    await push_blob(c, name, config)
    await push_blob(c, name, content)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(HELM_CONFIG, config),
            "layers": [descriptor(HELM_CONTENT, content)],
        }
    ).encode()
    r = await c.put(f"/v2/{name}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
    return digest_of(body)


async def test_chart_page_names_the_chart_and_the_helm_command(make_ui: UIFactory) -> None:
    chart = {"apiVersion": "v2", "name": "dockyard", "version": "0.1.0", "appVersion": "0.1.0"}
    config = json.dumps({**chart, "description": "A private <registry>"}).encode()
    async with make_ui() as c:
        digest = await _push_chart(c, "charts/dockyard", "0.1.0", config)
        r = await c.get("/ui/image", params={"name": "charts/dockyard", "ref": "0.1.0"})
        assert r.status_code == 200
        assert "Helm chart" in r.text and "dockyard 0.1.0" in r.text and "app 0.1.0" in r.text
        assert "A private &lt;registry&gt;" in r.text
        assert "helm pull oci://registry.test/charts/dockyard --version 0.1.0" in r.text
        assert "docker pull" not in r.text
        r = await c.get("/ui/image", params={"name": "charts/dockyard", "ref": digest})
        assert f"helm pull oci://registry.test/charts/dockyard@{digest}" in r.text


async def test_odd_chart_config_still_shows_a_chart(make_ui: UIFactory) -> None:
    async with make_ui() as c:
        await _push_chart(
            c, "charts/odd", "1", json.dumps({"name": ["not", "text"], "version": "1"}).encode()
        )
        r = await c.get("/ui/image", params={"name": "charts/odd", "ref": "1"})
        assert r.status_code == 200 and "Helm chart" in r.text and "charts/odd 1" in r.text
