"""SBOMs as OCI referrers: finding the ones an image has, storing the ones Syft made.

An SBOM is an artifact manifest (an OCI image manifest with ``artifactType``, the empty config
and one layer holding the document) whose ``subject`` is the image: what ``oras attach
--artifact-type application/spdx+json`` makes, so the referrers API, ``oras discover`` and the UI
list it like any client's. It is stored through the registry model like a client's push, in the
image's repository: it is linked there, it counts against that repository's quota (a repository
at its quota gets no generated SBOM; the job records the refusal), and it emits the usual
``ManifestPushed`` event, which names its subject so the scan subscriber ignores it (an SBOM is
never scanned). Garbage collection keeps a referrer exactly while its subject is kept
(``storage.gc``), so generated SBOMs follow their image through retention and deletion.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dockyard.oci.digest import Digest
from dockyard.storage.registry import Registry

SPDX_TYPE = "application/spdx+json"
CYCLONEDX_TYPE = "application/vnd.cyclonedx+json"
# What a client's SBOM referrer may be typed as (CycloneDX and SPDX by their IANA types, and the
# variants tools use); any of them means "this image has an SBOM: use it, do not make one".
SBOM_TYPES = frozenset(
    {SPDX_TYPE, CYCLONEDX_TYPE, "application/vnd.syft+json", "text/spdx", "text/spdx+json"}
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
GENERATOR = "dev.dockyard.sbom.generator"  # the annotation naming the tool that made it
FILENAMES = {SPDX_TYPE: "sbom.spdx.json", CYCLONEDX_TYPE: "sbom.cdx.json"}


@dataclass(frozen=True, slots=True)
class StoredSBOM:
    artifact_type: str
    digest: str  # the referrer manifest's digest
    generated: bool  # False: a client pushed it


async def existing_sboms(registry: Registry, name: str, subject: Digest) -> list[StoredSBOM]:
    """The SBOM referrers ``subject`` already has in ``name``."""
    return [
        StoredSBOM(d.artifact_type or "", str(d.digest), GENERATOR in (d.annotations or {}))
        for d in await registry.referrers(name, subject)
        if d.artifact_type in SBOM_TYPES
    ]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_sbom(
    registry: Registry,
    name: str,
    subject: tuple[str, Digest, int],
    artifact_type: str,
    document: bytes,
    generator: str,
    *,
    now: float | None = None,
) -> StoredSBOM:
    """Store ``document`` as a referrer of ``subject`` (media type, digest, size) in ``name``.
    ``QuotaExceeded`` when the repository's quota has no room for it."""
    media_type, digest, size = subject
    for blob in (EMPTY, document):
        await registry.push_blob(name, Digest.of(blob), _one(blob), len(blob))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": str(Digest.of(EMPTY)), "size": len(EMPTY)},
        "layers": [
            {
                "mediaType": artifact_type,
                "digest": str(Digest.of(document)),
                "size": len(document),
                "annotations": {"org.opencontainers.image.title": FILENAMES.get(artifact_type, "sbom.json")},
            }
        ],
        "subject": {"mediaType": media_type, "digest": str(digest), "size": size},
        "annotations": {"org.opencontainers.image.created": created, GENERATOR: generator},
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    result = await registry.put_manifest(name, Digest.of(body), body, OCI_MANIFEST)
    return StoredSBOM(artifact_type, str(result.digest), True)
