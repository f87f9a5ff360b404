"""Scan on push against a real ``dockyard serve``: the SBOMs appear as referrers, oras-py fetches
them, and ``dockyard scan`` / ``POST /admin/v1/scans`` answer on demand."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import oras.client
import pytest

from dockyard.scan.sbom import CYCLONEDX_TYPE, SPDX_TYPE
from tests.regclient import push_blob, push_manifest
from tests.scan.images import sample_image
from tests.scan.test_sbom import cdx_purls, spdx_purls
from tests.servers.dockyard import DOCKYARD, LiveRegistry

pytestmark = pytest.mark.live
OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LiveRegistry]:
    config = {"scan": {"enabled": True, "interval": "200ms"}}
    with LiveRegistry(tmp_path / "registry", config=config) as live:
        yield live
    assert "Traceback" not in live.log()


def sbom_referrers(client: httpx.Client, repo: str, digest: str) -> dict[str, Any]:
    r = client.get(f"/v2/{repo}/referrers/{digest}")
    assert r.status_code == 200
    return {m["artifactType"]: m for m in r.json()["manifests"]}


def test_pushed_image_gets_sboms_that_oras_fetches(registry: LiveRegistry, tmp_path: Path) -> None:
    image, expected, _ = sample_image("apps/live", "v1")
    with httpx.Client(base_url=registry.url, timeout=60) as client:
        for _, data in image.blobs:
            push_blob(client, "apps/live", data)
        digest = push_manifest(client, "apps/live", "v1", image.manifest, OCI)
        # The scanner runs in a worker once the push is acknowledged: wait for its referrers
        # (pytest's timeout bounds a scan that never comes).
        found: dict[str, Any] = {}
        while len(found) < 2:
            time.sleep(0.2)
            found = sbom_referrers(client, "apps/live", digest)
        assert set(found) == {CYCLONEDX_TYPE, SPDX_TYPE}

        puller = oras.client.OrasClient(hostname=registry.host, insecure=True)
        out = tmp_path / "out"
        puller.pull(target=f"{registry.host}/apps/live@{found[CYCLONEDX_TYPE]['digest']}", outdir=str(out))
        puller.pull(target=f"{registry.host}/apps/live@{found[SPDX_TYPE]['digest']}", outdir=str(out))
        assert cdx_purls(json.loads((out / "sbom.cdx.json").read_text())) == expected
        assert spdx_purls(json.loads((out / "sbom.spdx.json").read_text())) == expected

        # On demand, by the CLI (over the admin API): the image has its SBOMs, none are added.
        cli = subprocess.run(
            [
                DOCKYARD,
                "scan",
                "apps/live:v1",
                "--registry",
                registry.url,
                "--wait",
                "--json",
                "--timeout",
                "300",
            ],
            capture_output=True,
            text=True,
            timeout=330,
        )
        assert cli.returncode == 0, cli.stderr
        status = json.loads(cli.stdout)
        assert status["digest"] == digest and status["queued"] is None
        assert status["result"]["state"] == "done"
        [record] = status["result"]["images"]
        assert record["state"] == "generated"
        assert {s["digest"] for s in record["sboms"]} == {m["digest"] for m in found.values()}
        assert len(client.get(f"/v2/apps/live/referrers/{digest}").json()["manifests"]) == 2

        # The admin API refuses what names nothing.
        r = client.post("/admin/v1/scans", json={"repository": "apps/live", "reference": "nope"})
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        r = client.post("/admin/v1/scans", json={"repository": "apps/live"})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "BAD_REQUEST"
