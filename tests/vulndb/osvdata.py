"""OSV advisories and a CycloneDX SBOM written by the tests: each advisory either affects exactly
one package of the SBOM or is a near miss that must not (fixed earlier, another ecosystem, another
distribution release, withdrawn, and the version orders a string comparison gets wrong)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

MODIFIED = "2024-05-01T10:00:00Z"
LAYER_DEB = "sha256:" + "d" * 64
LAYER_APK = "sha256:" + "a" * 64
LAYER_APP = "sha256:" + "b" * 64
CVSS3_HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5
CVSS3_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"  # 10.0
CVSS3_MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2
CVSS4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3


def component(purl: str, layer: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "library", "name": purl.split("/")[-1].split("@")[0], "purl": purl}
    if layer is not None:
        item["properties"] = [
            {"name": "syft:package:foundBy", "value": "test"},
            {"name": "syft:location:0:layerID", "value": layer},
            {"name": "syft:location:0:path", "value": "/var/lib/dpkg/status"},
        ]
    return item


PURLS = {
    "libssl3": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12",
    "zlib1g": "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&upstream=zlib&distro=debian-12",
    "musl": "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1",
    "busybox": "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1",
    "libc6": "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.4?arch=amd64&upstream=glibc&distro=ubuntu-22.04",
    "jinja2": "pkg:pypi/Jinja2@3.1.2",
    "django": "pkg:pypi/django@4.2rc1",
    "traverse": "pkg:npm/%40babel/traverse@7.23.1",
    "lodash": "pkg:npm/lodash@4.17.21",
    "xnet": "pkg:golang/golang.org/x/net@v0.0.0-20220722155237-a158d28d115b",
    "stdlib": "pkg:golang/stdlib@go1.21.5",
    "log4j": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    "mvnlib": "pkg:maven/com.example/lib@1.0-beta2",
    "smallvec": "pkg:cargo/smallvec@1.6.0",
    "rack": "pkg:gem/rack@2.2.3.pre1",
}


def sbom() -> dict[str, Any]:
    """A CycloneDX 1.5 document shaped like Syft's (one component nested, one without a purl,
    one of an ecosystem without advisories)."""
    deb = [component(PURLS[n], LAYER_DEB) for n in ("libssl3", "zlib1g", "libc6")]
    apk = [component(PURLS[n], LAYER_APK) for n in ("musl", "busybox")]
    app = [
        component(PURLS[n], LAYER_APP)
        for n in ("jinja2", "django", "lodash", "xnet", "stdlib", "log4j", "mvnlib", "smallvec", "rack")
    ]
    parent = component(PURLS["traverse"], LAYER_APP)
    parent["components"] = [component("pkg:generic/openssl@3.0.0")]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"component": {"type": "container", "name": "test/image"}},
        "components": [*deb, *apk, parent, *app, {"type": "file", "name": "/etc/os-release"}],
    }


def advisory(
    ident: str,
    ecosystem: str,
    name: str,
    *,
    events: list[dict[str, str]] | None = None,
    kind: str = "ECOSYSTEM",
    versions: list[str] | None = None,
    modified: str = MODIFIED,
    **extra: Any,
) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if events is not None:
        affected["ranges"] = [{"type": kind, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    for key in ("ecosystem_specific", "database_specific"):
        if key in extra:
            affected[key] = extra.pop(key)
    return {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": modified,
        "published": "2024-01-01T00:00:00Z",
        "summary": f"{ident} in {name}",
        "affected": [affected],
        **extra,
    }


def fixed(version: str, introduced: str = "0") -> list[dict[str, str]]:
    return [{"introduced": introduced}, {"fixed": version}]


def cvss(vector: str) -> list[dict[str, str]]:
    kind = "CVSS_V4" if vector.startswith("CVSS:4") else "CVSS_V3"
    return [{"type": kind, "score": vector}]


def advisories() -> list[dict[str, Any]]:
    return [
        # --- Debian: releases, source packages, tilde and epoch ordering --------------------------
        advisory("DEBIAN-CVE-2023-0001", "Debian:12", "openssl", events=fixed("3.0.11-1~deb12u3"),
                 aliases=["CVE-2023-0001"], ecosystem_specific={"urgency": "not yet assigned"}),
        advisory("CVE-2023-0001", "Debian:12", "unrelated-source", events=fixed("1.0"),
                 severity=cvss(CVSS3_HIGH)),  # the alias the severity is borrowed from
        advisory("DEBIAN-CVE-2023-0002", "Debian:11", "openssl", events=fixed("3.0.99-1")),
        advisory("DEBIAN-CVE-2023-0003", "Debian:12", "openssl", events=fixed("3.0.11-1~deb12u1")),
        advisory("DEBIAN-CVE-2023-0004", "Debian:12", "zlib", events=fixed("1:1.2.13.dfsg-2"),
                 ecosystem_specific={"urgency": "low"}),
        advisory("DEBIAN-CVE-2023-0005", "Debian:12", "zlib", events=fixed("1.3.dfsg-1")),
        # --- Alpine: releases and -rN revisions -------------------------------------------------
        advisory("ALPINE-CVE-2024-0001", "Alpine:v3.19", "musl", events=fixed("1.2.4-r10"),
                 severity=cvss(CVSS3_MEDIUM)),
        advisory("ALPINE-CVE-2024-0002", "Alpine:v3.18", "musl", events=fixed("1.2.4-r10")),
        advisory("ALPINE-CVE-2024-0003", "Alpine:v3.19", "busybox", events=fixed("1.36.1-r1")),
        advisory("ALPINE-CVE-2024-0004", "Alpine:v3.19", "musl", events=fixed("1.2.5-r0")),
        # --- Ubuntu: "22.04:LTS" release forms, priority as the rating --------------------------
        advisory("UBUNTU-CVE-2024-0001", "Ubuntu:22.04:LTS", "glibc", events=fixed("2.35-0ubuntu3.5"),
                 severity=[{"type": "Ubuntu", "score": "medium"}]),
        advisory("UBUNTU-CVE-2024-0002", "Ubuntu:20.04:LTS", "glibc", events=fixed("2.35-0ubuntu3.5")),
        # --- PyPI: normalized names, pre-releases, withdrawn ------------------------------------
        advisory("PYSEC-2024-0001", "PyPI", "jinja2", events=fixed("3.1.3"), severity=cvss(CVSS3_MEDIUM),
                 aliases=["CVE-2024-0001", "GHSA-aaaa-bbbb-cccc"]),
        advisory("GHSA-dj00-0000-0001", "PyPI", "Django", events=fixed("4.2.1", introduced="4.2")),
        advisory("GHSA-dj00-0000-0002", "PyPI", "django", events=fixed("4.2.1", introduced="4.2a1"),
                 severity=cvss(CVSS4_CRITICAL)),
        advisory("PYSEC-2024-0002", "PyPI", "jinja2", events=fixed("9.0"),
                 withdrawn="2024-04-01T00:00:00Z"),
        # --- npm: semver ranges, last_affected, another ecosystem's same name -------------------
        advisory("GHSA-np00-0000-0001", "npm", "@babel/traverse", events=fixed("7.23.2"), kind="SEMVER",
                 database_specific={"severity": "CRITICAL"}),
        advisory("GHSA-np00-0000-0002", "npm", "lodash",
                 events=[{"introduced": "0"}, {"last_affected": "4.17.20"}]),
        advisory("GHSA-np00-0000-0003", "PyPI", "lodash", events=fixed("99.0")),
        # --- Go: pseudo-versions, the standard library ------------------------------------------
        advisory("GO-2022-0001", "Go", "golang.org/x/net", kind="SEMVER",
                 events=fixed("0.0.0-20220906165146-f3363e06e74c")),
        advisory("GO-2022-0002", "Go", "golang.org/x/net", kind="SEMVER",
                 events=fixed("0.0.0-20220701000000-000000000000")),
        advisory("GO-2023-0003", "Go", "stdlib", kind="SEMVER", events=fixed("1.21.6", introduced="1.21.0")),
        # --- Maven: qualifiers ------------------------------------------------------------------
        advisory("GHSA-mv00-0000-0001", "Maven", "org.apache.logging.log4j:log4j-core",
                 events=fixed("2.15.0", introduced="2.0-beta9"), severity=cvss(CVSS3_CRITICAL)),
        advisory("GHSA-mv00-0000-0002", "Maven", "org.apache.logging.log4j:log4j-core",
                 events=fixed("2.14.1.Final")),
        advisory("GHSA-mv00-0000-0003", "Maven", "com.example:lib", events=fixed("1.1", introduced="1.0")),
        advisory("GHSA-mv00-0000-0004", "Maven", "com.example:lib",
                 events=fixed("1.0-rc1", introduced="1.0-alpha1")),
        # --- crates.io: explicit version lists --------------------------------------------------
        advisory("RUSTSEC-2021-0001", "crates.io", "smallvec", events=fixed("1.6.1", introduced="0.6.10"),
                 kind="SEMVER"),
        advisory("RUSTSEC-2021-0002", "crates.io", "smallvec", versions=["1.5.0", "1.6.0"]),
        advisory("RUSTSEC-2021-0003", "crates.io", "smallvec", versions=["1.6.1"]),
        # --- RubyGems: .pre versions ------------------------------------------------------------
        advisory("GHSA-gm00-0000-0001", "RubyGems", "rack", events=fixed("2.2.3")),
        advisory("GHSA-gm00-0000-0002", "RubyGems", "rack", events=fixed("2.2.3.pre1")),
    ]  # fmt: skip


# (advisory, package) pairs the SBOM must produce: nothing more, nothing less.
EXPECTED = {
    ("DEBIAN-CVE-2023-0001", "libssl3"),
    ("DEBIAN-CVE-2023-0004", "zlib1g"),
    ("ALPINE-CVE-2024-0001", "musl"),
    ("ALPINE-CVE-2024-0004", "musl"),
    ("UBUNTU-CVE-2024-0001", "libc6"),
    ("PYSEC-2024-0001", "jinja2"),  # purls spell PyPI names in lower case
    ("GHSA-dj00-0000-0002", "django"),
    ("GHSA-np00-0000-0001", "@babel/traverse"),
    ("GO-2022-0001", "golang.org/x/net"),
    ("GO-2023-0003", "stdlib"),
    ("GHSA-mv00-0000-0001", "org.apache.logging.log4j:log4j-core"),
    ("GHSA-mv00-0000-0004", "com.example:lib"),
    ("RUSTSEC-2021-0001", "smallvec"),
    ("RUSTSEC-2021-0002", "smallvec"),
    ("GHSA-gm00-0000-0001", "rack"),
}


def write_zip(path: Path, records: list[dict[str, Any]], extra: dict[str, bytes] | None = None) -> Path:
    """An osv.dev ``all.zip``: one ``<id>.json`` per advisory at the top level."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
        for name, raw in (extra or {}).items():
            archive.writestr(name, raw)
    return path
