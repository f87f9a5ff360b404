"""One scan job: the SBOMs of an image (each platform of an index), used or made.

For each single-platform image the job names (the image itself, or every platform of an index;
attestation entries, whose platform is ``unknown``, are not images), an SBOM referrer a client
already pushed is used as it is; otherwise the image is written as an OCI layout (``scan.layout``),
Syft reads it (``scan.syft``) and both documents are stored as referrers (``scan.sbom``).
Artifacts and referrers (a manifest with a subject, an ``artifactType`` or a config that is no
image config: signatures, SBOMs, Helm charts) are not images: the job records them as skipped.
With an advisory database, each image's CycloneDX SBOM is then matched (``scan.vulns``): a scan
is "SBOM, then match". The result is a plain JSON-able record the queue keeps and the admin API
shows; it names the database's ``vulndbRevision`` read before matching, so an import that lands
during a match is seen as newer and the image is matched again (``ScanService.rescan``).

A rescan (``generate=False``) only re-matches: an image whose SBOM is gone is reported, never
handed to Syft, so a database update costs one match per image and no Syft run.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dockyard.errors import ManifestUnknown, QuotaExceeded
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.document import read_manifest
from dockyard.scan.layout import write_layout
from dockyard.scan.sbom import CYCLONEDX_TYPE, SPDX_TYPE, existing_sboms, store_sbom
from dockyard.scan.syft import Syft, SyftError
from dockyard.scan.vulns import findings, stored_cyclonedx
from dockyard.storage.registry import Registry
from dockyard.vulndb.store import VulnStore

log = logging.getLogger("dockyard.scan")
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


def _packages(cyclonedx: bytes) -> int:
    try:
        components = json.loads(cyclonedx).get("components", [])
    except (ValueError, AttributeError):
        return 0
    return len(components) if isinstance(components, list) else 0


class Scanner:
    def __init__(
        self, registry: Registry, syft: Syft, *, workdir: str | None = None, vulndb: VulnStore | None = None
    ) -> None:
        self.registry = registry
        self.syft = syft
        self.workdir = workdir
        self.vulndb = vulndb  # with one, each image's CycloneDX SBOM is matched (``scan.vulns``)

    async def scan(self, name: str, digest: Digest, *, generate: bool = True) -> dict[str, Any]:
        """Scan image or index ``digest`` of ``name``; the job's result record. Without
        ``generate``, an image without an SBOM is not given one (a rescan re-matches only)."""
        try:
            media_type, body = await self.registry.manifests.get(name, digest)
        except ManifestUnknown:
            return {"state": "gone", "images": []}
        revision = await self.vulndb.revision() if self.vulndb is not None else None
        doc = read_manifest(body)
        if media_type in mt.INDEXES:
            images = []
            for child in doc.manifests:
                if child.digest is None or child.media_type not in mt.IMAGE_MANIFESTS:
                    continue
                platform = child.platform
                if platform is not None and (
                    not platform.known or "unknown" in (platform.os, platform.architecture)
                ):
                    continue  # an attestation (buildx's provenance and SBOM entries)
                images.append(await self.scan_image(name, child.digest, str(platform or ""), generate))
        else:
            images = [await self.scan_image(name, digest, "", generate)]
        states = {image["state"] for image in images}
        state = "failed" if "failed" in states else "done" if images else "skipped"
        if states == {"skipped"}:
            state = "skipped"
        result: dict[str, Any] = {"state": state, "images": images}
        if revision is not None:
            result["vulndbRevision"] = revision
        return result

    async def scan_image(
        self, name: str, digest: Digest, platform: str, generate: bool = True
    ) -> dict[str, Any]:
        """The SBOMs of one single-platform image: found, made, or why not."""
        record: dict[str, Any] = {"digest": str(digest), "platform": platform}
        try:
            media_type, body = await self.registry.manifests.get(name, digest)
        except ManifestUnknown:
            return {**record, "state": "failed", "error": "the manifest is not in the repository"}
        doc = read_manifest(body)
        config_type = doc.config.media_type if doc.config is not None else ""
        if doc.subject is not None or doc.artifact_type or config_type not in IMAGE_CONFIGS:
            return {**record, "state": "skipped", "reason": "not an image (an artifact or a referrer)"}
        found = await existing_sboms(self.registry, name, digest)
        if found:
            state = "provided" if not all(s.generated for s in found) else "generated"
            record.update(state=state, sboms=[_sbom_json(s) for s in found])
            if self.vulndb is not None:
                record.update(await findings(self.vulndb, await stored_cyclonedx(self.registry, name, found)))
            return record
        if not generate:
            return {**record, "state": "failed", "error": "the image has no SBOM to match: scan it again"}
        work = Path(tempfile.mkdtemp(prefix="dockyard-scan-", dir=self.workdir))
        try:
            layout = work / "layout"
            layout.mkdir()
            layer_bytes = await write_layout(self.registry, name, digest, layout)
            run = await self.syft.scan(layout, work, name, str(digest))
        except SyftError as exc:
            log.error("SBOM generation failed", extra={"repository": name, "digest": str(digest)})
            return {**record, "state": "failed", "error": str(exc)}
        finally:
            shutil.rmtree(work, ignore_errors=True)
        subject = (media_type, digest, len(body))
        generator = f"syft {run.version}"
        try:
            stored = [
                await store_sbom(self.registry, name, subject, CYCLONEDX_TYPE, run.cyclonedx, generator),
                await store_sbom(self.registry, name, subject, SPDX_TYPE, run.spdx, generator),
            ]
        except QuotaExceeded as exc:
            return {**record, "state": "failed", "error": f"the repository's quota has no room: {exc}"}
        log.info(
            "SBOM generated",
            extra={"repository": name, "digest": str(digest), "seconds": round(run.seconds, 2)},
        )
        record.update(
            state="generated",
            sboms=[_sbom_json(s) for s in stored],
            packages=_packages(run.cyclonedx),
            layerBytes=layer_bytes,
            seconds=round(run.seconds, 3),
            maxRssBytes=run.max_rss_bytes,
            generator=generator,
        )
        if self.vulndb is not None:
            record.update(await findings(self.vulndb, run.cyclonedx))
        return record


def _sbom_json(sbom: Any) -> dict[str, Any]:
    return {"artifactType": sbom.artifact_type, "digest": sbom.digest, "generated": sbom.generated}
