"""What sparse pushes left out reads as missing everywhere a person or a script looks: the UI's
pages, the Hub API, the admin API's tags and inspection, the CLI's inspection and GC. No page
fails, nothing is dropped silently, and a collection reports the absent content instead of
warning about it."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rich.console import Console

from dockyard.cli.admin import _print_inspect
from tests.api.helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    push_blob,
    push_image,
)
from tests.web.conftest import UIFactory

pytestmark = pytest.mark.anyio
SPARSE = {"validation": {"manifests": {"indexes": {"platforms": "none"}, "images": {"sparse": True}}}}
ABSENT_CHILD = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "never": "pushed"}).encode()


async def test_missing_children_and_blobs_are_shown_as_missing(
    make_ui: UIFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_ui(SPARSE) as c:
        amd, amd_body = await push_image(c, "mirror/app", None, seed="amd")
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, amd_body, platform={"os": "linux", "architecture": "amd64"}),
                descriptor(OCI_MANIFEST, ABSENT_CHILD, platform={"os": "linux", "architecture": "arm64"}),
            ],
        }
        body = json.dumps(index).encode()
        r = await c.put("/v2/mirror/app/manifests/multi", content=body, headers={"Content-Type": OCI_INDEX})
        assert r.status_code == 201
        arm = digest_of(ABSENT_CHILD)
        config = json.dumps({"os": "linux", "architecture": "amd64"}).encode()
        await push_blob(c, "mirror/app", config)
        layer = descriptor(OCI_LAYER, b"a layer left behind")
        image = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [layer],
            }
        ).encode()
        r = await c.put(
            "/v2/mirror/app/manifests/part", content=image, headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 201

        # Hub API: the index's absent platform is listed, flagged; the present one is not.
        tag = (await c.get("/v2/repositories/mirror/app/tags/multi/")).json()
        images = {i["architecture"]: i for i in tag["images"]}
        assert images["arm64"]["missing"] is True and images["arm64"]["digest"] == arm
        assert images["arm64"]["size"] == 0 and "missing" not in images["amd64"]
        listing = (await c.get("/v2/repositories/mirror/app/tags/")).json()
        assert {r["name"] for r in listing["results"]} == {"multi", "part"}

        # Admin API: tags and inspection name what is missing.
        tags = (await c.get("/admin/v1/repositories/mirror/app/tags")).json()["tags"]
        assert {t["tag"]: t["platforms"] for t in tags}["multi"] == ["linux/amd64", "linux/arm64 (missing)"]
        info = (await c.get("/admin/v1/repositories/mirror/app/manifests/multi")).json()
        assert info["missing"] == [arm]
        children = {m["platform"]: m for m in info["manifests"]}
        assert children["linux/arm64"] == {"digest": arm, "platform": "linux/arm64", "missing": True}
        assert children["linux/amd64"]["digest"] == amd and "missing" not in children["linux/amd64"]
        part = (await c.get("/admin/v1/repositories/mirror/app/manifests/part")).json()
        assert part["missing"] == [layer["digest"]]
        assert part["layers"] == [{**{k: layer[k] for k in ("digest", "size", "mediaType")}, "missing": True}]
        assert (await c.get(f"/admin/v1/repositories/mirror/app/manifests/{amd}")).json()["missing"] == []

        # The CLI prints the same inspection.
        out = io.StringIO()
        _print_inspect(Console(file=out, width=200), info)
        assert "missing (not in this repository)" in out.getvalue() and arm in out.getvalue()
        out = io.StringIO()
        _print_inspect(Console(file=out, width=200), part)
        assert "(missing)" in out.getvalue()

        # The UI: chips and rows marked missing, nothing linked to a page that cannot exist.
        page = await c.get("/ui/repository", params={"name": "mirror/app"})
        assert page.status_code == 200 and "linux/arm64 missing" in page.text
        page = await c.get("/ui/image", params={"name": "mirror/app", "ref": "multi"})
        assert page.status_code == 200 and "linux/arm64 (missing)" in page.text
        assert "the index was pushed sparse" in page.text and f"ref={arm}" not in page.text
        page = await c.get("/ui/image", params={"name": "mirror/app", "ref": "part"})
        assert page.status_code == 200 and page.text.count(">missing</span>") == 1
        assert (await c.get("/ui/image", params={"name": "mirror/app", "ref": arm})).status_code == 404

        # GC: keeps everything, reports what is absent, warns about nothing.
        caplog.set_level(logging.WARNING, logger="dockyard.gc")
        report = (await c.post("/admin/v1/gc", json={})).json()
        assert report["blobs_deleted"] == [] and report["manifests_deleted"] == []
        assert report["missing"] == sorted([arm, layer["digest"]])
        assert not [r for r in caplog.records if r.name == "dockyard.gc"]
        assert (await c.get("/v2/mirror/app/manifests/multi")).status_code == 200
        assert (await c.get(f"/v2/mirror/app/manifests/{amd}")).status_code == 200
