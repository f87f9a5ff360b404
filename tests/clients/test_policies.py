"""Pull policies against the real docker client: ``docker pull`` of an image with a critical
finding fails showing the policy's message, and once the advisory is allowlisted it pulls and
runs; an unsigned image is refused until a cosign signature (behind its ``.sig`` tag, or as a
referrer) made with the policy's key is stored."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from dockyard.scan.sbom import CYCLONEDX_TYPE
from dockyard.vulndb.osv import parse
from dockyard.vulndb.store import SqliteVulnStore
from tests.clients.conftest import Docker, make_image
from tests.clients.images import push_to_registry
from tests.scan import signing
from tests.scan.policyapp import ADVISORIES, VULNERABLE, sbom
from tests.servers.dockyard import LiveRegistry

POLICY = {"name": "no-criticals", "repositories": ["prod/**"], "severity": "critical"}


async def _advisories(path: Path) -> None:
    store = SqliteVulnStore(path)
    await store.replace([parse(r) for r in ADVISORIES])
    await store.close()


def _config(vulndb: Path, policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "vulndb": {"path": str(vulndb)},
        "scan": {"enabled": True, "interval": "200ms", "policies": [policy]},
    }


def _push_sbom(client: httpx.Client, repo: str, subject: str, size: int) -> None:
    """A client's CycloneDX SBOM referrer, pushed before its image so the scan uses it (no Syft)."""
    document = sbom(*VULNERABLE)
    manifest = signing.compact(
        {
            "schemaVersion": 2,
            "mediaType": signing.OCI_MANIFEST,
            "artifactType": CYCLONEDX_TYPE,
            "config": {"mediaType": signing.OCI_EMPTY, "size": 2, "digest": signing.sha256(b"{}")},
            "layers": [
                {"mediaType": CYCLONEDX_TYPE, "size": len(document), "digest": signing.sha256(document)}
            ],
            "subject": {"mediaType": signing.OCI_MANIFEST, "digest": subject, "size": size},
        }
    )
    for data in (b"{}", document):
        r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": signing.sha256(data)}, content=data)
        assert r.status_code == 201, r.text
    r = client.put(
        f"/v2/{repo}/manifests/{signing.sha256(manifest)}",
        content=manifest,
        headers={"Content-Type": signing.OCI_MANIFEST},
    )
    assert r.status_code == 201, r.text


def test_docker_pull_is_refused_until_the_advisory_is_allowlisted(docker: Docker, tmp_path: Path) -> None:
    vulndb = tmp_path / "vulndb.sqlite"
    asyncio.run(_advisories(vulndb))
    image = make_image("policy: refused, then allowed")
    root = tmp_path / "data"
    with LiveRegistry(tmp_path / "first", root=root, config=_config(vulndb, POLICY)) as live:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            _push_sbom(client, "prod/app", image.digest, len(image.manifest.data))
            push_to_registry(live.url, "prod/app", image, "v1")
            # The scanner runs in a worker once the push is acknowledged (pytest's timeout bounds
            # a scan that never comes).
            query = {"repository": "prod/app", "reference": "v1"}
            while client.get("/admin/v1/scans", params=query).json()["result"] is None:
                time.sleep(0.2)
            result = client.get("/admin/v1/scans", params=query).json()["result"]
            assert {f["advisory"] for f in result["images"][0]["findings"]} == {
                "GHSA-pol-lpad",
                "GHSA-pol-odd",
                "GHSA-pol-even",
            }
        refused = docker("pull", f"{live.host}/prod/app:v1", check=False)
        assert refused.returncode != 0
        message = (
            f'pull of prod/app@{image.digest} refused by policy "no-criticals": GHSA-pol-lpad (critical) '
            "in left-pad 1.3.0, fixed in 1.3.1, at or above critical"
        )
        assert message in refused.stderr, refused.stderr
        assert docker("pull", f"{live.host}/prod/app@{image.digest}", check=False).returncode != 0

    allowed = {**POLICY, "allowlist": [{"id": "CVE-2099-0001", "expires": "2099-12-31"}]}
    with LiveRegistry(tmp_path / "second", root=root, config=_config(vulndb, allowed)) as live:
        out = docker("pull", f"{live.host}/prod/app:v1").stdout
        assert f"Digest: {image.digest}" in out
        ran = docker(
            "run", "--rm", "--network", "none", f"{live.host}/prod/app:v1", "busybox", "cat", "/hello.txt"
        )
        assert ran.stdout == "policy: refused, then allowed"
    assert "Traceback" not in (tmp_path / "first" / "dockyard.log").read_text()


def _put(client: httpx.Client, repo: str, reference: str, sig: signing.SignatureManifest) -> None:
    for data in sig.blobs:
        r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": signing.sha256(data)}, content=data)
        assert r.status_code == 201, r.text
    r = client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=sig.manifest,
        headers={"Content-Type": signing.OCI_MANIFEST},
    )
    assert r.status_code == 201, r.text


def test_docker_pull_of_an_unsigned_image_is_refused_until_it_is_signed(
    docker: Docker, tmp_path: Path
) -> None:
    """Two workers: with ``policycache: 0`` each pull reads the signatures again, whichever worker
    stored them (with the default, another worker sees a new signature within 10 s)."""
    key = signing.new_key()
    policy = {
        "name": "signed",
        "repositories": ["signed/**"],
        "signed": True,
        "keys": [signing.public_pem(key)],
    }
    tagged = make_image("policy: signed behind its .sig tag")
    referred = make_image("policy: signed by a referrer")
    config = {"scan": {"policycache": "0s", "policies": [policy]}}
    with (
        LiveRegistry(tmp_path / "registry", config=config) as live,
        httpx.Client(base_url=live.url) as client,
    ):
        for image in (tagged, referred):
            push_to_registry(live.url, "signed/app", image, image.digest.split(":")[1][:12])
            refused = docker("pull", f"{live.host}/signed/app@{image.digest}", check=False)
            assert refused.returncode != 0
            assert (
                f'pull of signed/app@{image.digest} refused by policy "signed": it has no cosign signature'
            ) in refused.stderr, refused.stderr

        payload = signing.payload(f"{live.host}/signed/app", tagged.digest)
        _put(
            client, "signed/app", signing.cosign_tag(tagged.digest), signing.signature_manifest(key, payload)
        )
        payload = signing.payload(f"{live.host}/signed/app", referred.digest)
        subject = (referred.digest, len(referred.manifest.data))
        sig = signing.signature_manifest(key, payload, subject)
        _put(client, "signed/app", sig.digest, sig)

        for image in (tagged, referred):
            out = docker("pull", f"{live.host}/signed/app@{image.digest}").stdout
            assert f"Digest: {image.digest}" in out, out
    assert "Traceback" not in live.log()
