"""Importing and matching a large advisory database: time and memory.

``python -m bench.vulndb_import [--advisories 50000] [--packages 500] [--postgres]`` writes a
synthetic osv.dev-shaped ``all.zip`` (advisories spread over the nine default ecosystems, the
distribution ones with three releases each, a kilobyte of details and references apiece, one in
fifty withdrawn), then runs ``dockyard vulndb update --from`` twice as a child process (the first
import, then the idempotent re-import) and ``dockyard vulndb match`` on an SBOM of
``--packages`` packages, reporting wall time and the child's peak RSS (from wait4). With
``--postgres`` the same runs against a PostgreSQL started for the occasion (``database.dsn``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

_UBUNTU = ["Ubuntu:20.04:LTS", "Ubuntu:22.04:LTS", "Ubuntu:24.04:LTS"]
_ECOSYSTEMS = [
    ("Debian", ["Debian:11", "Debian:12", "Debian:13"], "deb/debian", "distro=debian-12", "1.{}-1"),
    ("Ubuntu", _UBUNTU, "deb/ubuntu", "distro=ubuntu-22.04", "1.{}-0ubuntu1"),
    ("Alpine", ["Alpine:v3.18", "Alpine:v3.19", "Alpine:v3.20"], "apk/alpine", "distro=alpine-3.19.1", "1.{}-r0"),  # noqa: E501
    ("PyPI", ["PyPI"], "pypi", "", "1.{}"),
    ("npm", ["npm"], "npm", "", "1.{}.0"),
    ("Go", ["Go"], "golang/example.com", "", "v1.{}.0"),
    ("Maven", ["Maven"], "maven/org.example", "", "1.{}"),
    ("crates.io", ["crates.io"], "cargo", "", "1.{}.0"),
    ("RubyGems", ["RubyGems"], "gem", "", "1.{}"),
]  # fmt: skip
_NAMES = 2000  # package names per ecosystem: about three advisories each at 50,000


def _record(i: int) -> dict[str, Any]:
    base, ecosystems, _, _, form = _ECOSYSTEMS[i % len(_ECOSYSTEMS)]
    name = f"pkg{i // len(_ECOSYSTEMS) % _NAMES}"
    if base == "Maven":
        name = f"org.example:{name}"
    elif base == "Go":
        name = f"example.com/{name}"
    fixed = form.format(10 + i % 7).removeprefix("v")
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": f"{base.upper().replace('.', '')}-BENCH-{i:06d}",
        "modified": "2024-05-01T10:00:00Z",
        "published": "2024-01-01T00:00:00Z",
        "aliases": [f"CVE-2024-{i:06d}"],
        "summary": f"synthetic advisory {i}",
        "details": "x" * 900,
        "references": [{"type": "ADVISORY", "url": f"https://example.invalid/{i}"}],
        "affected": [
            {
                "package": {"ecosystem": eco, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "ecosystem_specific": {"urgency": "medium"},
            }
            for eco in ecosystems
        ],
    }
    if i % 3 == 0:
        record["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    if i % 50 == 0:
        record["withdrawn"] = "2024-06-01T00:00:00Z"
    return record


def write_zip(path: Path, count: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            record = _record(i)
            archive.writestr(f"{record['id']}.json", json.dumps(record))


def write_sbom(path: Path, count: int) -> None:
    components = []
    for i in range(count):
        _, _, purl_type, qualifiers, form = _ECOSYSTEMS[i % len(_ECOSYSTEMS)]
        name = f"pkg{i // len(_ECOSYSTEMS) % _NAMES}"
        purl = f"pkg:{purl_type}/{name}@{form.format(12)}" + (f"?{qualifiers}" if qualifiers else "")
        components.append({"type": "library", "name": name, "purl": purl})
    path.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": components}))


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and stdout of a child ``dockyard`` run."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "dockyard", *args], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"dockyard {' '.join(args)} failed: {out}")
    return seconds, usage.ru_maxrss / 1024, out


def bench(work: Path, advisories: int, packages: int, dsn: str | None) -> dict[str, Any]:
    archive, sbom, config = work / "all.zip", work / "sbom.json", work / "config.yml"
    started = time.perf_counter()
    write_zip(archive, advisories)
    written = time.perf_counter() - started
    write_sbom(sbom, packages)
    config.write_text(json.dumps({"storage": {"filesystem": {"rootdirectory": str(work / "root")}}}))
    env = {**os.environ, "DOCKYARD_LOG_LEVEL": "warning"}
    if dsn:
        env["REGISTRY_DATABASE_DSN"] = dsn
    common = ["--config", str(config)]
    first = _run(["vulndb", "update", "--from", str(archive), "--json", *common], env)
    again = _run(["vulndb", "update", "--from", str(archive), "--json", *common], env)
    matched = _run(["vulndb", "match", str(sbom), "--json", *common], env)
    findings = json.loads(matched[2])
    return {
        "backend": "postgres" if dsn else "sqlite",
        "advisories": advisories,
        "zipMiB": round(archive.stat().st_size / 2**20, 1),
        "zipWrittenSeconds": round(written, 1),
        "import": {**json.loads(first[2]), "wallSeconds": round(first[0], 1), "peakRssMiB": round(first[1])},
        "reimport": {
            **json.loads(again[2]),
            "wallSeconds": round(again[0], 1),
            "peakRssMiB": round(again[1]),
        },
        "match": {
            "packages": packages,
            "seconds": round(matched[0], 2),
            "peakRssMiB": round(matched[1]),
            "findings": len(findings["findings"]),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--advisories", type=int, default=50_000)
    parser.add_argument("--packages", type=int, default=500)
    parser.add_argument("--postgres", action="store_true", help="also against PostgreSQL")
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="vulndb-bench-") as tmp:
        (Path(tmp) / "sqlite").mkdir()
        results.append(bench(Path(tmp) / "sqlite", args.advisories, args.packages, None))
        if args.postgres:
            from dockyard.testing.postgres import PostgresServer, find_bin

            bin_dir = find_bin()
            if bin_dir is None:
                raise SystemExit("PostgreSQL is not installed")
            server = PostgresServer(bin_dir).start()
            try:
                (Path(tmp) / "pg").mkdir()
                results.append(
                    bench(Path(tmp) / "pg", args.advisories, args.packages, server.create_database())
                )
            finally:
                server.stop()
    for result in results:
        for key in ("import", "reimport"):
            result[key].pop("ecosystems", None)
            result[key].pop("source", None)
            result[key].pop("startedAt", None)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
