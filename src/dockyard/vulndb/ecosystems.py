"""OSV ecosystem names, distribution releases, and the packages a purl names.

OSV spells a distribution's release into the ecosystem (``Debian:12``, ``Alpine:v3.19``,
``Ubuntu:22.04:LTS``, ``Ubuntu:Pro:18.04:LTS``); Syft's purls carry it as a ``distro`` qualifier
(``debian-12``, ``alpine-3.19.1``, ``ubuntu-22.04``). Both are reduced here to one release key per
distribution (``12``, ``v3.19``, ``22.04``), so an advisory for one release never matches a package
of another. Distribution advisories name *source* packages; Syft gives the source as the
``upstream`` qualifier (``openssl`` or ``openssl@3.0.11-1``), so a package is looked up by both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded where a purl is parsed: a worker that never scans does not carry it
    from packageurl import PackageURL

DISTRIBUTIONS = frozenset({"Debian", "Ubuntu", "Alpine"})
# purl type → OSV ecosystem (distribution types are decided by the namespace below).
_PURL_ECOSYSTEM = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "maven": "Maven",
    "cargo": "crates.io",
    "gem": "RubyGems",
}
_DEB_NAMESPACE = {"debian": "Debian", "ubuntu": "Ubuntu"}
_UBUNTU_RELEASE = re.compile(r"\d+\.\d+")
_ALPINE_RELEASE = re.compile(r"v?(\d+)\.(\d+)")
_PEP503 = re.compile(r"[-_.]+")


def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """An OSV ecosystem string → (base ecosystem, release key; ``""`` when it names none)."""
    base, _, rest = ecosystem.partition(":")
    if not rest:
        return base, ""
    return base, release_key(base, rest)


def release_key(base: str, release: str) -> str:
    """One distribution release, as OSV or os-release spells it, → the key both reduce to."""
    if base == "Ubuntu":  # "22.04:LTS", "Pro:18.04:LTS", "22.04" → "22.04"
        found = _UBUNTU_RELEASE.search(release)
        return found[0] if found else release
    if base == "Alpine":  # "v3.19", "3.19.1" → "v3.19"
        match = _ALPINE_RELEASE.match(release)
        return f"v{match[1]}.{match[2]}" if match else release
    if base == "Debian":  # "12", "12.5" → "12"
        return release.split(".", 1)[0]
    return release


def normalize_name(ecosystem: str, name: str) -> str:
    """The spelling names are compared in: PyPI's are normalized (PEP 503), others exact."""
    if ecosystem == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name


@dataclass(frozen=True, slots=True)
class Package:
    """One package of an image, as the matcher looks it up."""

    purl: str
    ecosystem: str  # OSV base ecosystem
    release: str  # release key ("" when the purl names none, or outside distributions)
    name: str  # as listed (binary package for distributions)
    version: str  # as the purl says it
    # (name, version) pairs to look up: the package, then its source package when it differs.
    lookups: tuple[tuple[str, str], ...]
    layer: str | None = None


class PurlError(ValueError):
    """A purl this matcher cannot use (unparseable, an ecosystem without advisories, no version)."""


def _ecosystem(purl: PackageURL) -> str:
    if purl.type == "deb":
        found = _DEB_NAMESPACE.get((purl.namespace or "").lower())
    elif purl.type == "apk":
        found = "Alpine" if (purl.namespace or "").lower() == "alpine" else None
    else:
        found = _PURL_ECOSYSTEM.get(purl.type)
    if found is None:
        raise PurlError(f"no advisory ecosystem for {purl.type}/{purl.namespace or ''}")
    return found


def _name(ecosystem: str, purl: PackageURL) -> str:
    if ecosystem == "Maven":
        return f"{purl.namespace}:{purl.name}" if purl.namespace else purl.name
    if ecosystem in {"Go", "npm"} and purl.namespace:
        return f"{purl.namespace}/{purl.name}"
    return purl.name


def _version(ecosystem: str, name: str, version: str) -> str:
    if ecosystem == "Go" and name == "stdlib" and version.startswith("go"):
        return version[2:]  # Syft's "go1.21.5"; OSV's stdlib ranges say "1.21.5"
    return version


def package_of(purl_text: str, layer: str | None = None) -> Package:
    """The package a purl names; :class:`PurlError` when it cannot be matched."""
    try:
        from packageurl import PackageURL

        purl = PackageURL.from_string(purl_text)
    except ValueError as exc:
        raise PurlError(f"not a purl: {exc}") from None
    ecosystem = _ecosystem(purl)
    if not purl.version:
        raise PurlError(f"{purl_text} has no version")
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    release = ""
    if ecosystem in DISTRIBUTIONS:
        distro = str(qualifiers.get("distro", ""))
        prefix = ecosystem.lower() + "-"
        if distro.lower().startswith(prefix):
            release = release_key(ecosystem, distro[len(prefix) :])
    name = _name(ecosystem, purl)
    version = purl.version
    lookups = [(normalize_name(ecosystem, name), _version(ecosystem, name, version))]
    upstream = str(qualifiers.get("upstream", "")) if ecosystem in DISTRIBUTIONS else ""
    if upstream:
        source, _, source_version = upstream.partition("@")
        if source and (source, source_version or version) != lookups[0]:
            lookups.append((source, source_version or version))
    return Package(purl_text, ecosystem, release, name, version, tuple(lookups), layer)
