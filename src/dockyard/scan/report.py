"""What people look at: an image's vulnerabilities from its last scan, and its SBOM's packages.

The admin API (``GET /admin/v1/repositories/<name>/vulnerabilities/<reference>``), ``dockyard
vulns`` and the UI's image and repository pages all read the report made here, so they agree.
It is built from the scan result the queue keeps (nothing is matched on a read: a page view never
costs a match), flattened over the platforms of an index, worst first, with each finding's
layer located in its image: the matcher names the layer by Syft's diff id (the digest of the
uncompressed layer), which people cannot find in a manifest, so the report adds the layer's
position and the manifest's (compressed) blob digest, read from the image's config.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.errors import DomainError
from dockyard.oci.digest import Digest
from dockyard.oci.document import read_manifest
from dockyard.scan.sbom import CYCLONEDX_TYPE, existing_sboms
from dockyard.scan.vulns import stored_cyclonedx
from dockyard.storage.registry import Registry
from dockyard.vulndb.match import LAYER_PROPERTY
from dockyard.vulndb.severity import LEVELS, RANK

WORST_FIRST = tuple(reversed(LEVELS))


def at_least(level: str) -> set[str]:
    """The severity levels at or above ``level`` (``ValueError`` for an unknown level)."""
    if level not in RANK:
        raise ValueError(f"severity must be one of {', '.join(WORST_FIRST)}")
    return {lv for lv in LEVELS if RANK[lv] >= RANK[level]}


def worst(counts: dict[str, int]) -> str | None:
    """The worst level with a finding; None when there is none."""
    return next((level for level in WORST_FIRST if counts.get(level)), None)


async def layer_positions(registry: Registry, name: str, digest: str) -> dict[str, tuple[int, str]]:
    """Diff id → (1-based position, manifest blob digest) for an image's layers; empty when the
    image or its config cannot be read (the finding keeps its diff id)."""
    try:
        _, body = await registry.manifests.get(name, Digest.parse(digest))
        doc = read_manifest(body)
        if doc.config is None or doc.config.digest is None:
            return {}
        source = await registry.open_blob(name, doc.config.digest)
        config = json.loads(b"".join([chunk async for chunk in source.read()]))
        diff_ids = config["rootfs"]["diff_ids"]
    except (DomainError, ValueError, KeyError, TypeError):
        return {}
    blobs = [str(layer.digest) for layer in doc.layers]
    return {
        str(diff): (i + 1, blobs[i] if i < len(blobs) else "")
        for i, diff in enumerate(diff_ids if isinstance(diff_ids, list) else [])
    }


async def vulnerability_report(
    registry: Registry, status: dict[str, Any], minimum: str | None = None
) -> dict[str, Any]:
    """The report of one image (or index) from ``ScanService.status``; ``minimum`` keeps only
    findings at or above that severity (the counts always cover them all)."""
    result = status.get("result") or {}
    keep = at_least(minimum) if minimum else None
    counts = dict.fromkeys(WORST_FIRST, 0)
    findings: list[dict[str, Any]] = []
    images = []
    matched = False
    for image in result.get("images") or []:
        images.append(
            {
                key: image.get(key)
                for key in ("digest", "platform", "state", "packages", "error", "matchError", "reason")
                if image.get(key) is not None
            }
        )
        if image.get("findings") is None:
            continue
        matched = True
        layers = await layer_positions(registry, status["repository"], image["digest"])
        for finding in image["findings"]:
            level = finding.get("severity", "unknown")
            counts[level] = counts.get(level, 0) + 1
            if keep is not None and level not in keep:
                continue
            position, blob = layers.get(finding.get("layer") or "", (None, None))
            findings.append(
                {
                    **finding,
                    "image": image["digest"],
                    "platform": image.get("platform", ""),
                    "layerIndex": position,
                    "layerDigest": blob,
                }
            )
    findings.sort(key=lambda f: (-RANK.get(f["severity"], 0), f["package"], f["advisory"], f["platform"]))
    state = result.get("state") or ("queued" if status.get("queued") else "not scanned")
    return {
        "repository": status["repository"],
        "digest": status["digest"],
        "state": state,
        "queued": status.get("queued") is not None,
        "scanned": result.get("finished"),
        "vulndbRevision": result.get("vulndbRevision"),
        "matched": matched,
        "counts": counts if matched else None,
        "worst": worst(counts) if matched else None,
        "minimum": minimum,
        "images": images,
        "findings": findings,
    }


def _property(component: dict[str, Any], name: str) -> str | None:
    for prop in component.get("properties") or []:
        if isinstance(prop, dict) and prop.get("name") == name and isinstance(prop.get("value"), str):
            return str(prop["value"])
    return None


async def sbom_packages(registry: Registry, name: str, digest: Digest) -> list[dict[str, Any]] | None:
    """The packages of a single-platform image's CycloneDX SBOM referrer (name, version, type,
    purl, layer diff id), sorted by name; None when it has none."""
    sboms = [s for s in await existing_sboms(registry, name, digest) if s.artifact_type == CYCLONEDX_TYPE]
    document = await stored_cyclonedx(registry, name, sboms) if sboms else None
    if document is None:
        return None
    try:
        components = json.loads(document).get("components")
    except (ValueError, AttributeError):
        return None
    packages = [
        {
            "name": str(c.get("name", "")),
            "version": str(c.get("version", "")),
            "type": str(c.get("type", "")),
            "purl": str(c.get("purl", "")),
            "layer": _property(c, LAYER_PROPERTY),
        }
        for c in (components if isinstance(components, list) else [])
        if isinstance(c, dict) and c.get("type") != "file"
    ]
    return sorted(packages, key=lambda p: (p["name"], p["version"]))
