"""The UI's view of scanning: an image's severity badges, its findings (filtered on the server,
so a long table works without JavaScript) and its SBOM's packages; each tag's worst severity on
the repository page. Everything is read from the last scan (``scan.report``): a page view never
matches or scans. Without scanning (``scan.enabled`` off) the pages show none of it, and the
scanning modules are not loaded (a worker that never scans stays lean).
"""

from __future__ import annotations

from typing import Any

from dockyard.oci.digest import Digest
from dockyard.web.context import Page

MAX_PACKAGES = 5000  # an SBOM's package list shown on one page (the SBOM referrer has them all)


def _filters(page: Page, levels: tuple[str, ...]) -> tuple[str | None, str]:
    query = page.request.query_params
    minimum = query.get("severity") or None
    return (minimum if minimum in levels else None), (query.get("find") or "").strip()


def _matches(finding: dict[str, Any], text: str) -> bool:
    needle = text.lower()
    fields = [
        finding.get("package"),
        finding.get("advisory"),
        finding.get("installed"),
        *finding.get("aliases", []),
    ]
    return any(needle in str(f).lower() for f in fields if f)


async def image_view(page: Page, name: str, info: dict[str, Any]) -> dict[str, Any] | None:
    """The image page's vulnerability section; None when scanning is off or this is no image."""
    scans = page.services.scans
    if scans is None or info.get("subject") or info.get("artifactType"):
        return None
    from dockyard.scan.report import WORST_FIRST, layer_positions, sbom_packages, vulnerability_report

    minimum, text = _filters(page, WORST_FIRST)
    status = {
        "repository": name,
        "digest": info["digest"],
        "queued": None,
        "result": await scans.queue.result(name, info["digest"]),
    }
    report = await vulnerability_report(scans.registry, status, minimum)
    shown = [f for f in report["findings"] if not text or _matches(f, text)]
    packages = None
    if "manifests" not in info:  # one platform: its SBOM's packages, with their layer's position
        digest = Digest.parse(info["digest"])
        packages = await sbom_packages(scans.registry, name, digest)
        if packages:
            positions = await layer_positions(scans.registry, name, info["digest"])
            for p in packages[:MAX_PACKAGES]:
                p["layerIndex"] = positions.get(p["layer"] or "", (None, None))[0]
    return {
        "report": report,
        "findings": shown,
        "severity": minimum or "",
        "find": text,
        "levels": WORST_FIRST,
        "packages": packages[:MAX_PACKAGES] if packages else packages,
        "package_count": len(packages or []),
        "several": len({f["image"] for f in report["findings"]}) > 1,
    }


async def tag_severities(page: Page, name: str, digests: list[str]) -> dict[str, dict[str, Any]] | None:
    """Each digest's worst severity and its count from its last scan (``state`` says why there is
    none); None when scanning is off."""
    scans = page.services.scans
    if scans is None:
        return None
    from dockyard.scan.report import worst
    from dockyard.scan.service import total_counts

    out: dict[str, dict[str, Any]] = {}
    for digest in dict.fromkeys(digests):
        result = await scans.queue.result(name, digest)
        matched = result is not None and any(
            image.get("findings") is not None for image in result.get("images") or []
        )
        if result is None or not matched:
            state = (
                "not scanned"
                if result is None
                else "scan failed"
                if result.get("state") == "failed"
                else "not matched"
            )
            out[digest] = {"state": state}
            continue
        counts = total_counts(result)
        level = worst(counts)
        out[digest] = {"state": "matched", "worst": level, "count": counts.get(level or "", 0)}
    return out
