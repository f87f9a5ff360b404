"""The findings of images with real package metadata of every ecosystem the matcher knows, end to
end: two images pushed (Debian with Python, npm, Go, Maven, RubyGems and crates.io packages; an
Alpine one, since Syft takes one distribution per image from os-release), SBOMs made by the real
Syft, advisories imported by ``dockyard vulndb update --from`` an ``all.zip`` the test writes.

Each ecosystem gets advisories that hit and near misses that must not: fixed in an earlier
version (in each ecosystem's own order: dpkg's tilde, apk's ``-rN``), the same name in another
ecosystem, another distribution release, a withdrawn advisory, a later series. Versions of this
machine's own packages (dpkg, the test environment's Python packages, docker-proxy's Go) are read
at run time, so the advisories are written around whatever is installed. The exact set of
findings is asserted, and the table printed (``pytest -s``) as the closing note quotes it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.app import create_services
from dockyard.config import parse_config
from dockyard.oci.digest import Digest
from dockyard.scan.syft import find_syft
from dockyard.services import Services
from dockyard.testing.images import build_image
from tests.scan.images import alpine_layer, app_layer, os_release, sample_image
from tests.scan.test_rescan import config_file, vulndb_update
from tests.scan.test_sbom import CYCLONEDX_TYPE, cdx_purls, push, sbom_documents
from tests.vulndb.osvdata import CVSS3_CRITICAL, advisory, cvss, fixed, write_zip

pytestmark = pytest.mark.anyio
CONFIG = {"architecture": "amd64", "os": "linux", "config": {}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def shifted(version: str, by: int) -> str:
    """``version`` with its last number moved by ``by`` (``3.20`` → ``3.21``; ``2.36-9+deb12u14``
    → ``2.36-9+deb12u13``)."""
    *_, last = re.finditer(r"\d+", version)
    number = int(last[0]) + by
    assert number >= 0, f"no earlier version of {version} by its last number"
    return f"{version[: last.start()]}{number}{version[last.end() :]}"


def installed(purls: set[str], prefix: str) -> str:
    """The version of the one purl starting with ``prefix`` (``pkg:pypi/idna@``)."""
    [purl] = [p for p in purls if p.startswith(prefix)]
    return re.split(r"[?#]", purl[len(prefix) :])[0].replace("%2B", "+")


def advisories(purls: set[str]) -> tuple[list[dict[str, Any]], set[tuple[str, str, str]]]:
    """The advisories, and the (advisory, package, installed version) findings they must give."""
    release = os_release()["VERSION_ID"].split(".")[0]
    debian, older = f"Debian:{release}", f"Debian:{int(release) - 1}"
    libc6 = installed(purls, "pkg:deb/debian/libc6@")
    base_files = installed(purls, "pkg:deb/debian/base-files@")
    idna, sniffio = installed(purls, "pkg:pypi/idna@"), installed(purls, "pkg:pypi/sniffio@")
    go = installed(purls, "pkg:golang/stdlib@")
    go_next = f"1.{int(go.split('.')[1]) + 1}"
    records = [
        # Debian: by source package (libc6's is glibc), this release only, dpkg's order.
        advisory("DEBIAN-CVE-2099-1001", debian, "glibc", events=fixed(shifted(libc6, 1)), aliases=["CVE-2099-1001"]),
        advisory("DEBIAN-CVE-2099-1002", older, "glibc", events=fixed(shifted(libc6, 1))),  # another release
        advisory("DEBIAN-CVE-2099-1003", debian, "glibc", events=fixed(f"{libc6}~1")),  # tilde: fixed earlier
        advisory("DEBIAN-CVE-2099-1004", debian, "base-files", events=fixed(shifted(base_files, 1)),
                 ecosystem_specific={"urgency": "low"}),
        advisory("DEBIAN-CVE-2099-1005", older, "base-files", events=fixed(shifted(base_files, 1))),
        # Alpine: by origin (libcrypto3's is openssl), the v3.19 branch only, -rN numerically.
        advisory("ALPINE-CVE-2099-2001", "Alpine:v3.19", "musl", events=fixed("1.2.4_git20230717-r5")),
        advisory("ALPINE-CVE-2099-2002", "Alpine:v3.18", "musl", events=fixed("1.2.5-r0")),  # another branch
        advisory("ALPINE-CVE-2099-2003", "Alpine:v3.19", "openssl", events=fixed("3.1.4-r6")),
        advisory("ALPINE-CVE-2099-2004", "Alpine:v3.19", "busybox", events=fixed("1.36.1-r7")),  # r7 < r15
        # PyPI: a hit, fixed earlier, withdrawn.
        advisory("PYSEC-2099-3001", "PyPI", "IDNA", events=fixed(shifted(idna, 1))),
        advisory("PYSEC-2099-3002", "PyPI", "sniffio", events=fixed(shifted(sniffio, -1))),
        advisory("PYSEC-2099-3003", "PyPI", "idna", events=fixed("9999"), withdrawn="2099-01-01T00:00:00Z"),
        # npm: a hit; the same name in PyPI.
        advisory("GHSA-2099-npm1-0001", "npm", "left-pad", events=fixed("1.3.1"), kind="SEMVER",
                 database_specific={"severity": "HIGH"}),
        advisory("GHSA-2099-npm1-0002", "PyPI", "is-odd", events=fixed("99")),
        # Go: the standard library docker-proxy was built with; a later series.
        advisory("GO-2099-4001", "Go", "stdlib", kind="SEMVER", events=fixed(shifted(go, 1))),
        advisory("GO-2099-4002", "Go", "stdlib", kind="SEMVER", events=fixed(f"{go_next}.3", introduced=f"{go_next}.0")),
        # Maven: a Log4Shell-shaped range; fixed earlier.
        advisory("GHSA-2099-mvn1-0001", "Maven", "org.apache.logging.log4j:log4j-core",
                 events=fixed("2.15.0", introduced="2.0-beta9"), severity=cvss(CVSS3_CRITICAL)),
        advisory("GHSA-2099-mvn1-0002", "Maven", "org.apache.logging.log4j:log4j-core", events=fixed("2.14.0")),
        # crates.io: a hit; fixed earlier.
        advisory("RUSTSEC-2099-0001", "crates.io", "smallvec", kind="SEMVER", events=fixed("1.6.1", introduced="0.6.10")),
        advisory("RUSTSEC-2099-0002", "crates.io", "base64", kind="SEMVER", events=fixed("0.21.0")),
        # RubyGems: a hit; the same name in npm.
        advisory("GHSA-2099-gem1-0001", "RubyGems", "rack", events=fixed("2.2.3.1", introduced="2.2.0")),
        advisory("GHSA-2099-gem1-0002", "npm", "rack", events=fixed("99.0.0")),
    ]  # fmt: skip
    expected = {
        ("DEBIAN-CVE-2099-1001", "libc6", libc6),
        ("DEBIAN-CVE-2099-1004", "base-files", base_files),
        ("ALPINE-CVE-2099-2001", "musl", "1.2.4_git20230717-r4"),
        ("ALPINE-CVE-2099-2003", "libcrypto3", "3.1.4-r5"),
        ("PYSEC-2099-3001", "idna", idna),
        ("GHSA-2099-npm1-0001", "left-pad", "1.3.0"),
        ("GO-2099-4001", "stdlib", go),
        ("GHSA-2099-mvn1-0001", "org.apache.logging.log4j:log4j-core", "2.14.1"),
        ("RUSTSEC-2099-0001", "smallvec", "1.6.0"),
        ("GHSA-2099-gem1-0001", "rack", "2.2.3"),
    }
    return records, expected


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """The findings as a plain text table (what ``pytest -s`` shows)."""
    head = ("IMAGE", "SEVERITY", "ADVISORY", "ECOSYSTEM", "PACKAGE", "INSTALLED", "FIXED")
    cells = [head] + [
        (image, f["severity"], f["advisory"], f["ecosystem"], f["package"], f["installed"], f["fixed"] or "-")
        for image, f in rows
    ]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(head))]
    lines = ("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


async def test_findings_of_every_ecosystem(tmp_path: Path) -> None:
    config = config_file(tmp_path, Path(find_syft()))
    services: Services = create_services(parse_config(yaml.safe_load(config.read_text())))
    assert services.scans is not None and services.vulndb is not None
    debian, deb_purls, _ = sample_image("apps/debian", "v1")
    app, app_purls = app_layer(tmp_path)
    debian = build_image("apps/debian", "v1", [*(x for _, x in debian.blobs[:-1]), app], CONFIG)
    alpine_tar, alpine_purls = alpine_layer()
    alpine = build_image("apps/alpine", "v1", [alpine_tar], CONFIG)
    images = {"apps/debian": (debian, deb_purls | app_purls), "apps/alpine": (alpine, alpine_purls)}

    records, expected = advisories(deb_purls | app_purls | alpine_purls)
    archive = write_zip(tmp_path / "all.zip", records)
    assert await asyncio.to_thread(vulndb_update, config, archive) == 0
    digests = {repo: str(await push(services.registry, image, "v1")) for repo, (image, _) in images.items()}
    assert await services.scans.drain() == 2

    rows: list[tuple[str, dict[str, Any]]] = []
    for repo, (_, purls) in images.items():
        # Syft found exactly the packages the layers were built with, each with the purl expected.
        documents = await sbom_documents(services.registry, repo, Digest.parse(digests[repo]))
        assert cdx_purls(documents[CYCLONEDX_TYPE]) == purls
        result = await services.scans.queue.result(repo, digests[repo])
        assert result is not None and result["state"] == "done"
        [image] = result["images"]
        rows += [(repo, f) for f in image["findings"]]
    print("\n" + table(rows))
    assert {(f["advisory"], f["package"], f["installed"]) for _, f in rows} == expected
    assert len(rows) == len(expected)  # one finding per (package, advisory)
    by_id = {f["advisory"]: f for _, f in rows}
    log4j = by_id["GHSA-2099-mvn1-0001"]
    assert (log4j["severity"], log4j["severitySource"], log4j["vector"]) == (
        "critical",
        "cvss",
        CVSS3_CRITICAL,
    )
    assert (log4j["fixed"], log4j["layer"]) == ("2.15.0", debian.blobs[-2][0])
    assert by_id["DEBIAN-CVE-2099-1001"]["severity"] == "unknown"  # no CVSS, no alias record, no urgency
    assert by_id["DEBIAN-CVE-2099-1004"]["severity"] == "low"  # Debian's urgency
    assert by_id["GHSA-2099-npm1-0001"]["severity"] == "high"  # the database's rating
    assert by_id["ALPINE-CVE-2099-2003"]["fixed"] == "3.1.4-r6"
    await services.vulndb.close()
    await services.coordinator.close()
