"""Scan on push against a real ``dockyard serve``: the SBOMs appear as referrers, oras-py fetches
them, and ``dockyard scan`` / ``POST /admin/v1/scans`` answer on demand; an advisory import by
``dockyard vulndb update`` makes the running registry match the stored SBOMs again."""

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


def test_a_running_registry_rematches_after_dockyard_vulndb_update(tmp_path: Path) -> None:
    """Against ``dockyard serve`` with two workers: an import by ``dockyard vulndb update`` in
    another process is noticed by the registry's ``scan-rescan`` job, the image's findings gain
    the new advisory, and Syft (behind a counting wrapper) ran once, for the push."""
    from dockyard.testing.images import build_image
    from tests.scan.images import npm_layer
    from tests.scan.test_rescan import LPAD, MISS, ODD, counting_syft
    from tests.vulndb.osvdata import write_zip

    syft, runs = counting_syft(tmp_path)
    config = {"scan": {"enabled": True, "interval": "200ms", "syft": str(syft)}}
    with LiveRegistry(tmp_path / "registry", config=config, workers=2) as live:

        def update(archive: Path) -> None:
            cmd = [DOCKYARD, "vulndb", "update", "--config", str(live.config_path), "--from", str(archive)]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr

        def findings_when(client: httpx.Client, ready: Any) -> dict[str, Any]:
            # Bounded by pytest's timeout: the registry's jobs run every 200 ms.
            while True:
                r = client.get(f"/admin/v1/repositories/apps/rescan/vulnerabilities/{digest}")
                assert r.status_code == 200
                if ready(r.json()):
                    return dict(r.json())
                time.sleep(0.2)

        update(write_zip(tmp_path / "v1.zip", [LPAD, MISS]))
        image = build_image("apps/rescan", "v1", [npm_layer()[0]], {"architecture": "amd64", "os": "linux"})
        with httpx.Client(base_url=live.url, timeout=60) as client:
            for _, data in image.blobs:
                push_blob(client, "apps/rescan", data)
            digest = push_manifest(client, "apps/rescan", "v1", image.manifest, OCI)
            first = findings_when(client, lambda rep: rep["matched"])
            assert [f["advisory"] for f in first["findings"]] == ["GHSA-test-lpad"]
            assert first["vulndbRevision"] == 1

            update(write_zip(tmp_path / "v2.zip", [LPAD, MISS, ODD]))
            second = findings_when(client, lambda rep: rep["vulndbRevision"] == 2)
            assert sorted(f["advisory"] for f in second["findings"]) == ["GHSA-test-lpad", "GHSA-test-odd"]
            assert second["counts"]["unknown"] == 2
        assert runs.read_text().count("run") == 1
    assert "Traceback" not in live.log()
