"""An SBOM's packages against imported advisories: the exact findings, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.vulndb.importer import import_path
from dockyard.vulndb.match import Finding, match, summarize
from dockyard.vulndb.store import VulnStore
from tests.vulndb import osvdata

pytestmark = pytest.mark.anyio


def _by_key(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    return {(f.advisory, f.package): f for f in findings}


async def test_findings_are_exactly_the_affected_versions(store: VulnStore, tmp_path: Path) -> None:
    archive = osvdata.write_zip(tmp_path / "all.zip", osvdata.advisories())
    report = await import_path(store, archive)
    assert (report.records, report.added, report.withdrawn, report.invalid) == (31, 31, 1, 0)

    findings = await match(store, osvdata.sbom())
    found = _by_key(findings)
    assert set(found) == osvdata.EXPECTED
    assert len(findings) == len(osvdata.EXPECTED)  # one finding per (package, advisory)

    ssl = found[("DEBIAN-CVE-2023-0001", "libssl3")]
    assert (ssl.installed, ssl.fixed, ssl.layer) == (
        "3.0.11-1~deb12u2",
        "3.0.11-1~deb12u3",
        osvdata.LAYER_DEB,
    )
    assert ssl.aliases == ("CVE-2023-0001",)
    # No vector of its own, Debian's "not yet assigned": the alias record's CVSS decides.
    assert (ssl.severity.level, ssl.severity.source, ssl.severity.score) == (
        "high",
        "alias:CVE-2023-0001",
        7.5,
    )

    levels = {key: (f.severity.level, f.severity.source) for key, f in found.items()}
    assert levels[("DEBIAN-CVE-2023-0004", "zlib1g")] == ("low", "ecosystem")  # Debian urgency
    assert levels[("UBUNTU-CVE-2024-0001", "libc6")] == ("medium", "ecosystem")  # Ubuntu priority
    assert levels[("GHSA-np00-0000-0001", "@babel/traverse")] == ("critical", "ecosystem")  # GitHub's word
    assert levels[("GHSA-dj00-0000-0002", "django")] == ("critical", "cvss")  # CVSS v4
    assert levels[("GHSA-mv00-0000-0001", "org.apache.logging.log4j:log4j-core")] == ("critical", "cvss")
    assert levels[("ALPINE-CVE-2024-0001", "musl")] == ("medium", "cvss")
    assert levels[("ALPINE-CVE-2024-0004", "musl")] == ("unknown", "unknown")

    fixed = {key: f.fixed for key, f in found.items()}
    assert fixed[("DEBIAN-CVE-2023-0004", "zlib1g")] == "1:1.2.13.dfsg-2"
    assert fixed[("GO-2022-0001", "golang.org/x/net")] == "0.0.0-20220906165146-f3363e06e74c"
    assert fixed[("GO-2023-0003", "stdlib")] == "1.21.6"
    assert fixed[("RUSTSEC-2021-0002", "smallvec")] is None  # an explicit version list names no fix
    assert found[("GO-2023-0003", "stdlib")].installed == "go1.21.5"  # as the SBOM says it

    assert findings[0].severity.level == "critical" and findings[-1].severity.level == "unknown"
    assert summarize(findings) == {"critical": 3, "high": 1, "medium": 3, "low": 1, "none": 0, "unknown": 7}
    json.dumps([f.to_json() for f in findings])  # what the CLI and the API print


async def test_reimport_changes_only_newer_records(store: VulnStore, tmp_path: Path) -> None:
    records = osvdata.advisories()
    await import_path(store, osvdata.write_zip(tmp_path / "one.zip", records))
    before = await store.status()
    assert before["revision"] == await store.revision() == 1

    again = await import_path(store, osvdata.write_zip(tmp_path / "two.zip", records))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 31)
    after = await store.status()
    assert after["advisories"] == before["advisories"] == 31
    assert after["ecosystems"] == before["ecosystems"]
    assert [i["added"] for i in after["imports"]] == [0, 31]  # newest first
    assert after["revision"] == 1  # nothing changed: nothing to re-match

    # A newer record replaces the old one (its fix moved below the installed version); an older
    # copy of another (a stale mirror) changes nothing; a withdrawal takes a finding away.
    newer = osvdata.advisory(
        "DEBIAN-CVE-2023-0004", "Debian:12", "zlib", events=osvdata.fixed("1:1.2.12-1"),
        modified="2024-06-01T00:00:00.123456789Z",
    )  # fmt: skip
    stale = osvdata.advisory(
        "ALPINE-CVE-2024-0001", "Alpine:v3.19", "musl", events=osvdata.fixed("1.2.4-r0"),
        modified="2023-01-01T00:00:00Z",
    )  # fmt: skip
    withdrawn = osvdata.advisory(
        "GO-2023-0003", "Go", "stdlib", kind="SEMVER", events=osvdata.fixed("1.21.6", introduced="1.21.0"),
        modified="2024-06-01T00:00:00Z", withdrawn="2024-06-01T00:00:00Z",
    )  # fmt: skip
    changes = await import_path(store, osvdata.write_zip(tmp_path / "three.zip", [newer, stale, withdrawn]))
    assert (changes.added, changes.updated, changes.unchanged, changes.withdrawn) == (0, 2, 1, 1)
    found = {(f.advisory, f.package) for f in await match(store, osvdata.sbom())}
    gone = {("DEBIAN-CVE-2023-0004", "zlib1g"), ("GO-2023-0003", "stdlib")}
    assert found == osvdata.EXPECTED - gone
    assert (await store.status())["withdrawn"] == 2
    assert await store.revision() == 2


async def test_bad_records_are_counted_and_skipped(store: VulnStore, tmp_path: Path) -> None:
    good = osvdata.advisory("PYSEC-2024-0009", "PyPI", "jinja2", events=osvdata.fixed("3.1.3"))
    extra = {
        "not-json.json": b"{nope",
        "no-id.json": json.dumps({"modified": osvdata.MODIFIED}).encode(),
        "bad-time.json": json.dumps({"id": "X-1", "modified": "yesterday"}).encode(),
        "bad-affected.json": json.dumps(
            {"id": "X-2", "modified": osvdata.MODIFIED, "affected": "no"}
        ).encode(),
        "README.txt": b"not a record, not counted",
        "latin1.json": b"\xff\xfe",
    }
    report = await import_path(store, osvdata.write_zip(tmp_path / "all.zip", [good], extra))
    assert (report.records, report.added, report.invalid) == (6, 1, 5)
    found = await match(store, osvdata.sbom())
    assert [(f.advisory, f.fixed) for f in found] == [("PYSEC-2024-0009", "3.1.3")]
