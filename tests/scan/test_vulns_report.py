"""Where people read an image's vulnerabilities: the admin API, ``dockyard vulns`` and the summary
``dockyard scan`` prints, all from the last scan's result. The image carries a client's CycloneDX
SBOM whose components name the image's layers by diff id (as Syft does), so no Syft runs, and
the exact findings, counts and layer positions are known."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.app import build_app, create_services
from dockyard.cli.main import main
from dockyard.config import parse_config
from dockyard.scan.report import at_least, sbom_packages, vulnerability_report, worst
from dockyard.scan.sbom import CYCLONEDX_TYPE, store_sbom
from dockyard.services import Services
from dockyard.testing.images import build_image
from dockyard.vulndb.osv import parse
from tests.scan.test_sbom import OCI_MANIFEST, push
from tests.vulndb.osvdata import CVSS3_CRITICAL, CVSS3_MEDIUM, advisory, component, cvss, fixed

LAYERS = [b"base layer", b"app layer"]


def services_for(root: Path, scan: bool = True) -> Services:
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(root), "fsync": False}},
        "scan": {"enabled": scan},
    }
    return create_services(parse_config(tree))  # vulndb: <root>/dockyard-vulndb.sqlite, as --root has it


def sbom_for(diff_ids: list[str]) -> bytes:
    base, app = diff_ids
    components = [
        component("pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&upstream=zlib&distro=debian-12", base),
        component("pkg:pypi/jinja2@3.1.2", app),
        component("pkg:npm/lodash@4.17.21", app),
        {"type": "file", "name": "/etc/os-release"},
    ]
    return json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": components}).encode()


ADVISORIES = [
    advisory("DEBIAN-CVE-2099-0001", "Debian:12", "zlib", events=fixed("1:1.2.13.dfsg-2"),
             severity=cvss(CVSS3_CRITICAL), aliases=["CVE-2099-0001"]),
    advisory("PYSEC-2099-0001", "PyPI", "jinja2", events=fixed("3.1.3"), severity=cvss(CVSS3_MEDIUM),
             aliases=["CVE-2099-0002", "GHSA-aaaa-bbbb-cccc"]),
    advisory("GHSA-np99-0000-0001", "npm", "lodash", events=[{"introduced": "0"}]),  # no fix, no rating
    advisory("GHSA-np99-0000-0002", "npm", "lodash", events=fixed("4.17.21")),  # fixed in the installed one
]  # fmt: skip


async def setup(root: Path) -> tuple[str, list[str]]:
    """An image with a client's SBOM, scanned (matched) against the advisories; its digest and the
    manifest's layer digests."""
    services = services_for(root)
    assert services.scans is not None and services.vulndb is not None
    image = build_image("apps/web", "v1", LAYERS, {"architecture": "amd64", "os": "linux"})
    digest = await push(services.registry, image, "v1")
    config = json.loads(image.blobs[-1][1])
    document = sbom_for(config["rootfs"]["diff_ids"])
    subject = (OCI_MANIFEST, digest, len(image.manifest))
    await store_sbom(services.registry, "apps/web", subject, CYCLONEDX_TYPE, document, "client")
    await services.vulndb.replace([parse(a) for a in ADVISORIES])
    assert await services.scans.drain() == 1
    other = build_image("apps/web", "v2", [b"other"], {"architecture": "amd64", "os": "linux"})
    await push(services.registry, other, "v2")  # queued, never scanned here
    assert services.scans.intake is not None
    await services.scans.intake.settle()
    await services.vulndb.close()
    await services.coordinator.close()
    return str(digest), [d for d, _ in image.blobs[:-1]]


async def api_calls(root: Path, scan: bool = True) -> dict[str, httpx.Response]:
    services = services_for(root, scan)
    app = build_app(services)
    transport = httpx.ASGITransport(app=app)
    base = "/admin/v1/repositories/apps/web/vulnerabilities"
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        out = {
            "all": await client.get(f"{base}/v1"),
            "high": await client.get(f"{base}/v1", params={"severity": "high"}),
            "bad": await client.get(f"{base}/v1", params={"severity": "severe"}),
            "missing": await client.get(f"{base}/nope"),
            "queued": await client.get(f"{base}/v2"),
        }
    if scan:  # dockyard vulns --registry: the CLI's HTTP backend reads the same route
        from dockyard.cli.backends import HTTPBackend

        backend = HTTPBackend("http://registry.test", None, None)
        await backend.client.aclose()
        backend.client = httpx.AsyncClient(transport=transport, base_url="http://registry.test")
        out["http-backend"] = httpx.Response(
            200, json=await backend.vulnerabilities("apps/web", "v1", "high")
        )
        await backend.close()
    if services.vulndb is not None:
        await services.vulndb.close()
    await services.coordinator.close()
    return out


def findings_of(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            f["severity"],
            f["package"],
            f["installed"],
            f["fixed"],
            f["advisory"],
            tuple(f["aliases"]),
            f["layerIndex"],
        )
        for f in report["findings"]
    ]


EXPECTED = [
    ("critical", "zlib1g", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-2", "DEBIAN-CVE-2099-0001", ("CVE-2099-0001",), 1),
    ("medium", "jinja2", "3.1.2", "3.1.3", "PYSEC-2099-0001", ("CVE-2099-0002", "GHSA-aaaa-bbbb-cccc"), 2),
    ("unknown", "lodash", "4.17.21", None, "GHSA-np99-0000-0001", (), 2),
]  # fmt: skip


def test_admin_api_and_cli_show_the_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no wrapped cells
    digest, layer_digests = asyncio.run(setup(tmp_path))
    calls = asyncio.run(api_calls(tmp_path))

    assert calls["all"].status_code == 200
    report = calls["all"].json()
    assert (report["digest"], report["state"], report["matched"], report["worst"]) == (
        digest,
        "done",
        True,
        "critical",
    )
    assert report["counts"] == {"critical": 1, "high": 0, "medium": 1, "low": 0, "none": 0, "unknown": 1}
    assert findings_of(report) == EXPECTED
    assert [f["layerDigest"] for f in report["findings"]] == [
        layer_digests[0],
        layer_digests[1],
        layer_digests[1],
    ]
    assert report["findings"][0]["image"] == digest and report["findings"][0]["vector"] == CVSS3_CRITICAL

    high = calls["high"].json()
    assert findings_of(high) == EXPECTED[:1] and high["counts"] == report["counts"]  # counts cover all
    assert calls["http-backend"].json() == high
    assert calls["bad"].status_code == 400 and calls["bad"].json()["errors"][0]["code"] == "BAD_REQUEST"
    assert calls["missing"].status_code == 404
    assert calls["missing"].json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    queued = calls["queued"].json()
    assert (queued["state"], queued["queued"], queued["matched"], queued["counts"]) == (
        "queued",
        True,
        False,
        None,
    )

    off = asyncio.run(api_calls(tmp_path, scan=False))
    assert off["all"].status_code == 404 and off["all"].json()["errors"][0]["code"] == "NOT_FOUND"

    # The CLI on the storage root: the same report as JSON, a table, and --severity.
    assert main(["vulns", "apps/web:v1", "--root", str(tmp_path), "--json"]) == 0
    assert findings_of(json.loads(capsys.readouterr().out)) == EXPECTED
    assert main(["vulns", "apps/web:v1", "--root", str(tmp_path), "--severity", "medium"]) == 0
    out = capsys.readouterr().out
    assert "critical 1, medium 1, unknown 1" in out
    assert "DEBIAN-CVE-2099-0001 (CVE-2099-0001)" in out and "PYSEC-2099-0001" in out
    assert "GHSA-np99-0000-0001" not in out  # below the minimum
    assert f"1: {layer_digests[0].split(':')[1][:12]}" in out
    assert main(["vulns", "apps/web:v2", "--root", str(tmp_path)]) == 1  # not scanned yet
    assert "queued, not matched" in capsys.readouterr().out
    assert main(["vulns", "apps/web:nope", "--root", str(tmp_path)]) == 4
    assert main(["vulns", "apps/web", "--root", str(tmp_path)]) == 2

    # dockyard scan matches again (the client's SBOM: no Syft) and prints the same summary.
    assert main(["scan", "apps/web:v1", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "generated" in out and "critical 1, medium 1, unknown 1" in out and "GHSA-np99-0000-0001" in out
    assert main(["scan", "apps/web:v1", "--root", str(tmp_path), "--json"]) == 0
    assert findings_of(json.loads(capsys.readouterr().out)["vulnerabilities"]) == EXPECTED


def test_report_helpers(tmp_path: Path) -> None:
    assert at_least("high") == {"high", "critical"}
    with pytest.raises(ValueError, match="severity must be one of"):
        at_least("severe")
    assert worst({"critical": 0, "low": 2}) == "low" and worst({}) is None

    async def packages() -> tuple[Any, Any, dict[str, Any]]:
        digest, _ = await setup(tmp_path)
        services = services_for(tmp_path)
        from dockyard.oci.digest import Digest

        found = await sbom_packages(services.registry, "apps/web", Digest.parse(digest))
        none = await sbom_packages(
            services.registry, "apps/web", await services.registry.resolve("apps/web", "v2")
        )
        # A result whose image cannot be read keeps the diff id, without a position.
        status = {
            "repository": "apps/web",
            "digest": "sha256:" + "0" * 64,
            "queued": None,
            "result": {"state": "done", "images": [{"digest": "sha256:" + "0" * 64, "findings": [
                {"severity": "low", "package": "p", "advisory": "A", "layer": "sha256:1"}]}]},
        }  # fmt: skip
        report = await vulnerability_report(services.registry, status)
        await services.coordinator.close()
        return found, none, report

    found, none, report = asyncio.run(packages())
    assert [(p["name"], p["version"], p["type"]) for p in found] == [
        ("jinja2", "", "library"),
        ("lodash", "", "library"),
        ("zlib1g", "", "library"),
    ]
    assert found[0]["purl"] == "pkg:pypi/jinja2@3.1.2" and found[0]["layer"] is not None
    assert none is None
    assert report["findings"][0]["layerIndex"] is None and report["findings"][0]["layer"] == "sha256:1"
