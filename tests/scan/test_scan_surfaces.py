"""The admin API and the CLI of scanning, in process: off by default, queuing on push and on
demand with it on, and ``dockyard scan`` on a storage root (a client's SBOM: no Syft run)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from dockyard.app import build_app, create_services
from dockyard.cli.main import main
from dockyard.config import parse_config
from dockyard.oci.digest import Digest
from dockyard.scan.sbom import CYCLONEDX_TYPE, store_sbom
from dockyard.testing.images import build_image
from tests.scan.test_sbom import OCI_MANIFEST, fs_registry, push


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client_for(root: Path, scan: bool) -> httpx.AsyncClient:
    """The whole app (its lifespan, and so the scanners, not started): a push's queue write is
    awaited before the response, as in a server."""
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(root), "fsync": False}},
        "scan": {"enabled": scan},
    }
    app = build_app(create_services(parse_config(tree)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")


async def put_image(client: httpx.AsyncClient, repo: str, tag: str) -> str:
    image = build_image(repo, tag, [b"layer of " + repo.encode()], {"architecture": "amd64", "os": "linux"})
    for digest, data in image.blobs:
        r = await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        assert r.status_code == 201
    r = await client.put(
        f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201
    return image.manifest_digest


@pytest.mark.anyio
async def test_scans_are_off_by_default(tmp_path: Path) -> None:
    client = client_for(tmp_path, scan=False)
    async with client:
        await put_image(client, "app", "v1")
        r = await client.post("/admin/v1/scans", json={"repository": "app", "reference": "v1"})
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
        r = await client.get("/admin/v1/scans", params={"repository": "app", "reference": "v1"})
        assert r.status_code == 404
    assert not (tmp_path / "docker/registry/v2/_dockyard/scans").exists()  # nothing queued on push


@pytest.mark.anyio
async def test_push_and_demand_queue_scans(tmp_path: Path) -> None:
    client = client_for(tmp_path, scan=True)
    async with client:
        digest = await put_image(client, "app", "v1")
        r = await client.get("/admin/v1/scans", params={"repository": "app", "reference": "v1"})
        assert r.status_code == 200
        queued = r.json()["queued"]
        assert (queued["repository"], queued["digest"], queued["reason"]) == ("app", digest, "push")
        assert r.json()["result"] is None

        r = await client.post("/admin/v1/scans", json={"repository": "app", "reference": digest})
        assert r.status_code == 202 and r.json()["queued"]["reason"] == "demand"
        r = await client.post("/admin/v1/scans", json={"repository": "bad name", "reference": "v1"})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "NAME_INVALID"
        r = await client.post("/admin/v1/scans", content=b"[1]")
        assert r.status_code == 400
        r = await client.get("/admin/v1/scans", params={"repository": "app", "reference": "nope"})
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


async def _image_with_sbom(root: Path) -> tuple[Digest, str]:
    registry = fs_registry(root)
    image = build_image("apps/cli", "v1", [b"cli layer"], {"architecture": "amd64", "os": "linux"})
    digest = await push(registry, image, "v1")
    sbom = await store_sbom(
        registry, "apps/cli", (OCI_MANIFEST, digest, len(image.manifest)), CYCLONEDX_TYPE, b"{}", "client"
    )
    await registry.coordinator.close()
    return digest, sbom.digest


def test_cli_scans_a_storage_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digest, sbom = asyncio.run(_image_with_sbom(tmp_path))

    assert main(["scan", "apps/cli:v1", "--root", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["digest"] == str(digest) and data["queued"] is None
    [record] = data["result"]["images"]
    assert record["state"] == "generated"  # the stored SBOM carries the generator annotation
    assert record["sboms"] == [{"artifactType": CYCLONEDX_TYPE, "digest": sbom, "generated": True}]

    assert main(["scan", f"apps/cli@{digest}", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"apps/cli@{digest}: done" in out and "application/vnd.cyclonedx+json" in out

    assert main(["scan", "apps/cli", "--root", str(tmp_path)]) == 2  # no tag or digest
    assert main(["scan", "apps/cli:nope", "--root", str(tmp_path)]) == 4
