"""SBOMs made by the real Syft from images in the store, stored as referrers, and what follows
from them: exact package URLs and layer attribution, platforms of an index, a client's SBOM used
instead, referrers never scanned, quotas, garbage collection."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.coord import LOCAL_AREA
from dockyard.coord.local import LocalCoordinator
from dockyard.coord.memory import MemoryCoordinator
from dockyard.oci.digest import Digest
from dockyard.scan.sbom import CYCLONEDX_TYPE, GENERATOR, SPDX_TYPE, store_sbom
from dockyard.scan.scanner import Scanner
from dockyard.scan.syft import Syft
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.gc import GCOptions, collect
from dockyard.storage.quota import QuotaRule, Quotas
from dockyard.storage.registry import Registry
from dockyard.testing.coord_suite import ManualClock
from dockyard.testing.images import Image, build_image
from dockyard.vulndb.osv import parse
from dockyard.vulndb.store import SqliteVulnStore
from tests.scan.images import npm_layer, os_release, sample_image
from tests.vulndb.osvdata import advisory, fixed

pytestmark = pytest.mark.anyio
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fs_registry(root: Path, quotas: list[QuotaRule] | None = None) -> Registry:
    coordinator = LocalCoordinator(str(root / LOCAL_AREA), ManualClock(time.time()))
    driver = FilesystemDriver(str(root), fsync=False)
    return Registry(driver, Quotas(driver, quotas) if quotas else None, coordinator=coordinator)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push(registry: Registry, image: Image, tag: str | None = None) -> Digest:
    for digest, data in image.blobs:
        await registry.push_blob(image.repo, Digest.parse(digest), _one(data), len(data))
    reference: str | Digest = tag or Digest.parse(image.manifest_digest)
    return (await registry.put_manifest(image.repo, reference, image.manifest, OCI_MANIFEST)).digest


async def blob_json(registry: Registry, name: str, digest: str) -> Any:
    source = await registry.open_blob(name, Digest.parse(digest))
    return json.loads(b"".join([c async for c in source.read()]))


async def sbom_documents(registry: Registry, name: str, subject: Digest) -> dict[str, Any]:
    """Each SBOM referrer's document, by artifact type (one of each is expected)."""
    out = {}
    for ref in await registry.referrers(name, subject):
        manifest = json.loads((await registry.manifests.get(name, ref.digest))[1])
        assert manifest["subject"]["digest"] == str(subject)
        assert manifest["layers"][0]["mediaType"] == ref.artifact_type
        assert ref.artifact_type not in out
        out[ref.artifact_type] = await blob_json(registry, name, manifest["layers"][0]["digest"])
    return out


def cdx_purls(doc: dict[str, Any]) -> set[str]:
    return {c["purl"] for c in doc["components"] if "purl" in c}


def spdx_purls(doc: dict[str, Any]) -> set[str]:
    """The packages' purls (the image itself, a CONTAINER, aside)."""
    return {
        ref["referenceLocator"]
        for package in doc["packages"]
        for ref in package.get("externalRefs", [])
        if ref["referenceType"] == "purl" and package.get("primaryPackagePurpose") != "CONTAINER"
    }


def spdx_image(doc: dict[str, Any]) -> str:
    [image] = [p for p in doc["packages"] if p.get("primaryPackagePurpose") == "CONTAINER"]
    [purl] = [r["referenceLocator"] for r in image["externalRefs"] if r["referenceType"] == "purl"]
    return str(purl)


def cdx_layers(doc: dict[str, Any]) -> dict[str, str]:
    """purl → the layer (diff id) Syft found it in, from its ``syft:location:0:layerID``."""
    out = {}
    for c in doc["components"]:
        props = {p["name"]: p["value"] for p in c.get("properties", [])}
        if "purl" in c:
            out[c["purl"]] = props["syft:location:0:layerID"]
    return out


async def advisories(path: Path) -> SqliteVulnStore:
    """Advisories for the sample image: two that affect it, and near misses that must not."""
    release = os_release()
    distro = f"{release['ID'].capitalize()}:{release['VERSION_ID']}"
    store = SqliteVulnStore(path)
    records = [
        advisory("GHSA-test-lpad", "npm", "left-pad", events=fixed("1.3.1")),
        advisory("DSA-test-1", distro, "base-files", events=fixed("999")),
        advisory("GHSA-test-odd", "npm", "is-odd", events=fixed("3.0.1")),  # fixed in the installed one
        advisory("DSA-test-2", f"{release['ID'].capitalize()}:9", "base-files", events=fixed("999")),
        advisory("PYSEC-test", "crates.io", "idna", events=fixed("999")),  # another ecosystem
    ]
    await store.replace([parse(r) for r in records])
    return store


async def test_sbom_of_an_image_names_every_package_and_its_layer(tmp_path: Path) -> None:
    """Debian, Python, npm and Go packages, each in its own layer: both documents list exactly
    their purls, and CycloneDX names the layer each came from; then the SBOM is matched against
    the advisory database, each finding naming its layer."""
    registry = fs_registry(tmp_path)
    image, expected, layer_digests = sample_image("apps/sample", "v1")
    digest = await push(registry, image, "v1")
    store = await advisories(tmp_path / "vulndb.sqlite")
    result = await Scanner(registry, Syft(), vulndb=store).scan("apps/sample", digest)

    assert result["state"] == "done"
    [record] = result["images"]
    assert record["state"] == "generated"
    assert record["packages"] >= len(expected)
    assert record["maxRssBytes"] > 0 and record["layerBytes"] == sum(len(b) for _, b in image.blobs[:-1])
    docs = await sbom_documents(registry, "apps/sample", digest)
    assert set(docs) == {CYCLONEDX_TYPE, SPDX_TYPE}
    assert cdx_purls(docs[CYCLONEDX_TYPE]) == expected
    assert spdx_purls(docs[SPDX_TYPE]) == expected
    assert spdx_image(docs[SPDX_TYPE]).startswith(f"pkg:oci/apps/sample@{digest}")
    layers = cdx_layers(docs[CYCLONEDX_TYPE])
    by_ecosystem = {purl.split("/")[0]: layers[purl] for purl in expected}
    assert by_ecosystem == {
        "pkg:deb": layer_digests[0],
        "pkg:pypi": layer_digests[1],
        "pkg:npm": layer_digests[2],
        "pkg:golang": layer_digests[3],
    }
    found = {(f["package"], f["advisory"], f["layer"]) for f in record["findings"]}
    assert found == {
        ("left-pad", "GHSA-test-lpad", layer_digests[2]),
        ("base-files", "DSA-test-1", layer_digests[0]),
    }
    assert record["counts"]["unknown"] == 2
    referrers = {r.artifact_type: r for r in await registry.referrers("apps/sample", digest)}
    assert (referrers[SPDX_TYPE].annotations or {})[GENERATOR] == "syft 1.18.1"

    # Scanning again finds the generated SBOMs: Syft does not run again, nothing new is stored,
    # and the stored CycloneDX document is matched to the same findings.
    again = await Scanner(registry, Syft("/bin/false"), vulndb=store).scan("apps/sample", digest)
    assert again["images"][0]["state"] == "generated"
    assert again["images"][0]["findings"] == record["findings"]
    await store.close()
    assert len(await registry.referrers("apps/sample", digest)) == 2

    # The SBOM referrers are no images: scanning one is skipped, and makes nothing.
    sbom = referrers[CYCLONEDX_TYPE].digest
    skipped = await Scanner(registry, Syft("/bin/false")).scan("apps/sample", sbom)
    assert skipped["state"] == "skipped"
    assert await registry.referrers("apps/sample", sbom) == []


async def test_each_platform_of_an_index_gets_its_sboms_streamed_from_a_store_without_files() -> None:
    """On a driver with no local files (the layout is a streamed copy) each platform of an index
    is scanned; the attestation entry is not."""
    registry = Registry(MemoryDriver(), coordinator=MemoryCoordinator())
    layer, purls = npm_layer()
    entries = []
    children = {}
    for arch in ("amd64", "arm64"):
        image = build_image("multi", "", [layer], {"architecture": arch, "os": "linux"})
        children[arch] = await push(registry, image)
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": image.manifest_digest,
                "size": len(image.manifest),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    attestation = build_image("multi", "", [b"x" * 10], {"architecture": "unknown", "os": "unknown"})
    await push(registry, attestation)
    entries.append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": attestation.manifest_digest,
            "size": len(attestation.manifest),
            "platform": {"architecture": "unknown", "os": "unknown"},
        }
    )
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    index = (await registry.put_manifest("multi", "latest", body, OCI_INDEX)).digest

    result = await Scanner(registry, Syft()).scan("multi", index)
    assert result["state"] == "done", result
    assert [(i["platform"], i["state"]) for i in result["images"]] == [
        ("linux/amd64", "generated"),
        ("linux/arm64", "generated"),
    ]
    for child in children.values():
        docs = await sbom_documents(registry, "multi", child)
        assert cdx_purls(docs[CYCLONEDX_TYPE]) == purls == spdx_purls(docs[SPDX_TYPE])
    assert await registry.referrers("multi", Digest.parse(attestation.manifest_digest)) == []
    assert await registry.referrers("multi", index) == []


async def test_a_client_sbom_is_used_instead(tmp_path: Path) -> None:
    registry = fs_registry(tmp_path)
    image, _, _ = sample_image("apps/own", "v1")
    digest = await push(registry, image, "v1")
    doc = json.dumps({"spdxVersion": "SPDX-2.3", "packages": []}).encode()
    for d in (b"{}", doc):
        await registry.push_blob("apps/own", Digest.of(d), _one(d), len(d))
    client_sbom = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SPDX_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": str(Digest.of(b"{}")),
            "size": 2,
        },
        "layers": [{"mediaType": SPDX_TYPE, "digest": str(Digest.of(doc)), "size": len(doc)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(image.manifest)},
    }
    body = json.dumps(client_sbom).encode()
    pushed = (await registry.put_manifest("apps/own", Digest.of(body), body, OCI_MANIFEST)).digest

    store = SqliteVulnStore(tmp_path / "vulndb.sqlite")
    result = await Scanner(registry, Syft("/bin/false"), vulndb=store).scan(
        "apps/own", digest
    )  # Syft would fail
    await store.close()
    assert result["images"][0]["state"] == "provided"
    assert result["images"][0]["matchError"] == "the image has no CycloneDX SBOM to match"
    assert result["images"][0]["sboms"] == [
        {"artifactType": SPDX_TYPE, "digest": str(pushed), "generated": False}
    ]
    assert [r.digest for r in await registry.referrers("apps/own", digest)] == [pushed]


async def test_a_failing_syft_is_recorded_and_stores_nothing(tmp_path: Path) -> None:
    registry = fs_registry(tmp_path)
    image, _, _ = sample_image("apps/broken", "v1")
    digest = await push(registry, image, "v1")
    result = await Scanner(registry, Syft("/bin/false")).scan("apps/broken", digest)
    assert result["state"] == "failed"
    assert "syft exited with status 1" in result["images"][0]["error"]
    assert await registry.referrers("apps/broken", digest) == []
    assert (await Scanner(registry, Syft()).scan("apps/broken", Digest.of(b"none")))["state"] == "gone"


async def test_generated_sboms_count_against_the_quota(tmp_path: Path) -> None:
    """A repository whose quota has room for the image but not for its SBOMs gets none; the job
    says why. Another repository, without a quota, gets them."""
    layer, _ = npm_layer()
    image = build_image("full/app", "v1", [layer], {"architecture": "amd64", "os": "linux"})
    room = sum(len(b) for _, b in image.blobs) + 10
    registry = fs_registry(tmp_path, [QuotaRule("full/**", room)])
    digest = await push(registry, image, "v1")
    result = await Scanner(registry, Syft()).scan("full/app", digest)
    assert result["state"] == "failed"
    assert "quota" in result["images"][0]["error"]
    assert await registry.referrers("full/app", digest) == []


async def test_sboms_follow_their_subject_through_gc(tmp_path: Path) -> None:
    """A collection keeps an SBOM while its image is kept, and frees it with the image."""
    registry = fs_registry(tmp_path)
    image, _, _ = sample_image("apps/gc", "v1")
    digest = await push(registry, image, "v1")
    subject = (OCI_MANIFEST, digest, len(image.manifest))
    sboms = [
        await store_sbom(
            registry, "apps/gc", subject, kind, b'{"bomFormat":"CycloneDX"}' + kind.encode(), "test"
        )
        for kind in (CYCLONEDX_TYPE, SPDX_TYPE)
    ]
    options = GCOptions(delete_untagged=True, grace_seconds=0.0)
    clock = registry.coordinator.clock  # type: ignore[attr-defined]
    clock.advance(60)
    await collect(registry, options)
    assert {str(r.digest) for r in await registry.referrers("apps/gc", digest)} == {s.digest for s in sboms}

    await registry.delete_manifest("apps/gc", "v1")
    clock.advance(60)
    report = await collect(registry, options)
    assert {m["digest"] for m in report.manifests_deleted} == {str(digest), *(s.digest for s in sboms)}
    assert await registry.referrers("apps/gc", digest) == []
    for s in sboms:
        assert await registry.blobs.size_global(Digest.parse(s.digest)) is None
