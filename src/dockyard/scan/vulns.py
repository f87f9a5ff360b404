"""A scan's second step: the image's CycloneDX SBOM matched against the advisory database.

The SBOM is the one the first step found or made (``scan.scanner``): a client's CycloneDX
referrer is read from the store, a generated one is matched from the bytes Syft wrote. Matching
itself is ``vulndb.match`` (each ecosystem's version order, distribution releases, severities);
this module only fetches the document and records the findings and their counts by severity in
the scan's result, which the queue keeps and ``GET /admin/v1/scans`` shows. Without an advisory
database (``Services.vulndb`` is None) a scan stops at the SBOMs.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.oci.digest import Digest
from dockyard.oci.document import read_manifest
from dockyard.scan.sbom import CYCLONEDX_TYPE, StoredSBOM
from dockyard.storage.registry import Registry
from dockyard.vulndb.match import match, summarize
from dockyard.vulndb.store import VulnStore

MAX_SBOM_BYTES = 256 * 1024 * 1024  # a client's SBOM larger than this is not read into memory


async def stored_cyclonedx(registry: Registry, name: str, sboms: list[StoredSBOM]) -> bytes | None:
    """The CycloneDX document among ``sboms`` (referrers in ``name``), None when there is none."""
    for sbom in sboms:
        if sbom.artifact_type != CYCLONEDX_TYPE:
            continue
        _, body = await registry.manifests.get(name, Digest.parse(sbom.digest))
        layers = [ref for ref in read_manifest(body).layers if ref.digest is not None]
        if not layers or layers[0].digest is None:
            continue
        source = await registry.open_blob(name, layers[0].digest)
        if source.size > MAX_SBOM_BYTES:
            continue
        return b"".join([chunk async for chunk in source.read()])
    return None


async def findings(store: VulnStore, document: bytes | None) -> dict[str, Any]:
    """``findings`` (worst first) and ``counts`` by severity; or why there are none."""
    if document is None:
        return {"findings": None, "matchError": "the image has no CycloneDX SBOM to match"}
    try:
        sbom = json.loads(document)
    except ValueError:
        return {"findings": None, "matchError": "the CycloneDX SBOM is not JSON"}
    found = await match(store, sbom)
    return {"findings": [f.to_json() for f in found], "counts": summarize(found)}
