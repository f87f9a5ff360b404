"""An image's packages (a CycloneDX JSON SBOM, as Syft writes it) against the stored advisories.

Each component with a purl of a known ecosystem becomes a :class:`~dockyard.vulndb.ecosystems.Package`
(its layer from Syft's ``syft:location:0:layerID`` property); each is looked up by (ecosystem,
name and source name) and kept when the advisory's release is the package's (``Debian:12`` never
matches a Debian 11 package; a package whose SBOM names no release matches every release's
advisory, reported once) and its version is affected in the ecosystem's own order. Severity is
the advisory's own CVSS vector, else the worst CVSS of a record that shares an id with it, else
the ecosystem's rating, else ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dockyard.vulndb.ecosystems import Package, PurlError, package_of
from dockyard.vulndb.severity import RANK, UNKNOWN, Severity
from dockyard.vulndb.store import Candidate, VulnStore
from dockyard.vulndb.versions import check

LAYER_PROPERTY = "syft:location:0:layerID"


@dataclass(frozen=True, slots=True)
class Finding:
    package: str
    purl: str
    ecosystem: str
    installed: str
    advisory: str
    aliases: tuple[str, ...]
    severity: Severity
    fixed: str | None
    layer: str | None
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "purl": self.purl,
            "ecosystem": self.ecosystem,
            "installed": self.installed,
            "advisory": self.advisory,
            "aliases": list(self.aliases),
            "severity": self.severity.level,
            "severitySource": self.severity.source,
            "score": self.severity.score,
            "vector": self.severity.vector,
            "fixed": self.fixed,
            "layer": self.layer,
            "summary": self.summary,
        }


def _components(items: Any) -> Iterator[dict[str, Any]]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            yield item
            yield from _components(item.get("components"))


def _layer(component: dict[str, Any]) -> str | None:
    for prop in component.get("properties") or []:
        if (
            isinstance(prop, dict)
            and prop.get("name") == LAYER_PROPERTY
            and isinstance(prop.get("value"), str)
        ):
            return str(prop["value"])
    return None


def packages_of(sbom: Any) -> list[Package]:
    """The packages of a CycloneDX JSON SBOM that advisories can name (others are skipped)."""
    found: dict[str, Package] = {}
    for component in _components(sbom.get("components") if isinstance(sbom, dict) else None):
        purl = component.get("purl")
        if not isinstance(purl, str):
            continue
        try:
            package = package_of(purl, _layer(component))
        except PurlError:
            continue
        found.setdefault(purl, package)
    return list(found.values())


def _applies(package: Package, entry: Candidate) -> bool:
    release = entry.affected.release
    return not release or not package.release or release == package.release


async def match(store: VulnStore, sbom: Any) -> list[Finding]:
    """The findings of ``sbom``'s packages, worst first, one per (package, advisory)."""
    packages = packages_of(sbom)
    by_ecosystem: dict[str, set[str]] = {}
    for package in packages:
        by_ecosystem.setdefault(package.ecosystem, set()).update(name for name, _ in package.lookups)
    entries: dict[tuple[str, str], list[Candidate]] = {}
    for ecosystem, names in by_ecosystem.items():
        for entry in await store.candidates(ecosystem, sorted(names)):
            entries.setdefault((ecosystem, entry.affected.name), []).append(entry)
    hits: dict[tuple[str, str], tuple[Package, Candidate, str | None]] = {}
    for package in packages:
        for name, version in package.lookups:
            for entry in entries.get((package.ecosystem, name), []):
                key = (package.purl, entry.advisory)
                if key in hits or not _applies(package, entry):
                    continue
                verdict = check(entry.affected, version)
                if verdict.affected:
                    hits[key] = (package, entry, verdict.fixed)
    borrowed = await store.alias_severities(
        sorted({entry.advisory for _, entry, _ in hits.values() if entry.cvss is None})
    )
    findings = [
        Finding(
            package=package.name,
            purl=package.purl,
            ecosystem=package.ecosystem,
            installed=package.version,
            advisory=entry.advisory,
            aliases=entry.aliases,
            severity=_severity(entry, borrowed),
            fixed=fixed,
            layer=package.layer,
            summary=entry.summary,
        )
        for package, entry, fixed in hits.values()
    ]
    findings.sort(key=lambda f: (-RANK[f.severity.level], f.package, f.advisory))
    return findings


def _severity(entry: Candidate, borrowed: dict[str, Severity]) -> Severity:
    if entry.cvss is not None:
        return entry.cvss
    if entry.advisory in borrowed:
        return borrowed[entry.advisory]
    rating = entry.affected.rating or entry.rating
    if rating is not None:
        return Severity(rating, source="ecosystem")
    return UNKNOWN


def summarize(findings: list[Finding]) -> dict[str, int]:
    """Counts by severity level, every level present (zero or not)."""
    counts = dict.fromkeys(reversed(RANK), 0)
    for finding in findings:
        counts[finding.severity.level] += 1
    return counts
