"""An advisory database update re-matches every scanned image's stored SBOM, through the scan
queue, without running Syft again: Syft here is the real binary behind a wrapper that counts its
``scan`` runs, and the database is updated by ``dockyard vulndb update --from`` an ``all.zip``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.app import create_services, scan_jobs
from dockyard.cli.main import main
from dockyard.config import parse_config
from dockyard.events import Event, ScanFinished
from dockyard.scan.queue import QueuedScan
from dockyard.scan.service import rematchable
from dockyard.scan.syft import find_syft
from dockyard.services import Services
from dockyard.testing.images import build_image
from tests.scan.images import npm_layer
from tests.scan.test_sbom import push
from tests.vulndb.osvdata import advisory, fixed, write_zip

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def counting_syft(tmp_path: Path) -> tuple[Path, Path]:
    """A wrapper around the real Syft that appends a line to a file for each ``scan`` run."""
    runs = tmp_path / "syft-runs"
    runs.touch()
    wrapper = tmp_path / "syft"
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = scan ]; then echo run >> {runs}; fi\nexec {find_syft()} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, runs


def config_file(tmp_path: Path, syft: Path) -> Path:
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "store"), "fsync": False}},
        "vulndb": {"path": str(tmp_path / "vulndb.sqlite")},
        "scan": {"enabled": True, "syft": str(syft)},
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(tree))
    return path


def vulndb_update(config: Path, archive: Path) -> int:
    """``dockyard vulndb update`` as an operator runs it (its own event loop, in a thread)."""
    return main(["vulndb", "update", "--config", str(config), "--from", str(archive)])


LPAD = advisory("GHSA-test-lpad", "npm", "left-pad", events=fixed("1.3.1"), aliases=["CVE-2099-0001"])
MISS = advisory("GHSA-test-miss", "PyPI", "is-odd", events=fixed("99"))  # another ecosystem
ODD = advisory("GHSA-test-odd", "npm", "is-odd", events=fixed("3.0.2"))  # added by the update


def found(result: dict[str, Any]) -> set[tuple[str, str]]:
    [image] = result["images"]
    return {(f["package"], f["advisory"]) for f in image["findings"]}


async def test_a_database_update_rematches_stored_sboms_without_syft(tmp_path: Path) -> None:
    syft, runs = counting_syft(tmp_path)
    config = config_file(tmp_path, syft)
    services: Services = create_services(parse_config(yaml.safe_load(config.read_text())))
    assert services.scans is not None and services.vulndb is not None
    scans = services.scans
    recorder = Recorder()
    services.registry.events.subscribers += (recorder,)  # type: ignore[attr-defined]
    assert "scan-rescan" in {job.name for job in scan_jobs(services)}

    assert await asyncio.to_thread(vulndb_update, config, write_zip(tmp_path / "v1.zip", [LPAD, MISS])) == 0
    image = build_image("apps/web", "v1", [npm_layer()[0]], {"architecture": "amd64", "os": "linux"})
    digest = str(await push(services.registry, image, "v1"))  # the push subscriber queues it
    assert await scans.rescan() == 0  # nothing scanned yet: nothing to match again
    assert await scans.drain() == 1
    first = await scans.queue.result("apps/web", digest)
    assert first is not None and first["vulndbRevision"] == 1
    assert found(first) == {("left-pad", "GHSA-test-lpad")}
    assert runs.read_text().count("run") == 1
    assert await scans.rescan() == 0  # matched at the current revision

    # The update adds an advisory for a package of the image: the image is queued again as a
    # rescan, and its stored SBOM is matched: the new finding appears, Syft does not run.
    assert (
        await asyncio.to_thread(vulndb_update, config, write_zip(tmp_path / "v2.zip", [LPAD, MISS, ODD])) == 0
    )
    assert await services.vulndb.revision() == 2
    assert await scans.rescan() == 1
    [queued] = await scans.queue.pending()
    assert (queued.repository, queued.digest, queued.reason) == ("apps/web", digest, "rescan")
    assert await scans.rescan() == 0  # already waiting: not queued twice
    assert await scans.drain() == 1
    second = await scans.queue.result("apps/web", digest)
    assert second is not None and second["vulndbRevision"] == 2
    assert found(second) == {("left-pad", "GHSA-test-lpad"), ("is-odd", "GHSA-test-odd")}
    same = sorted(second["images"][0]["sboms"], key=str) == sorted(first["images"][0]["sboms"], key=str)
    assert same  # the stored SBOMs, not new ones
    assert runs.read_text().count("run") == 1
    finished = [e for e in recorder.events if isinstance(e, ScanFinished)]
    assert [(e.reason, e.state, {k: n for k, n in e.counts if n}) for e in finished] == [
        ("push", "done", {"unknown": 1}),
        ("rescan", "done", {"unknown": 2}),
    ]

    # The same export again changes nothing: no revision, no rescan.
    assert await asyncio.to_thread(vulndb_update, config, tmp_path / "v2.zip") == 0
    assert await scans.rescan() == 0
    assert await scans.queue.pending() == []

    # A rescan never makes an SBOM: an image without one is reported, Syft still not run.
    bare = build_image("apps/web", "v2", [b"no packages"], {"architecture": "amd64", "os": "linux"})
    bare_digest = await push(services.registry, bare, "v2")
    job = QueuedScan("apps/web", str(bare_digest), "rescan", 2.0)
    result = await scans.run(job)
    assert result is not None and result["images"][0]["state"] == "failed"
    assert "no SBOM" in result["images"][0]["error"]
    assert runs.read_text().count("run") == 1
    await services.vulndb.close()
    await services.coordinator.close()


def test_which_results_are_matched_again() -> None:
    sbom = {"images": [{"state": "generated", "sboms": [{"digest": "sha256:1"}]}]}
    assert rematchable({**sbom, "vulndbRevision": 1}, 2)
    assert rematchable(sbom, 1)  # scanned before there was a database
    assert not rematchable({**sbom, "vulndbRevision": 2}, 2)
    assert not rematchable({"images": [{"state": "failed", "error": "syft"}], "vulndbRevision": 0}, 2)
    assert not rematchable({"state": "gone", "images": []}, 2)


def test_no_rescan_job_without_a_database(tmp_path: Path) -> None:
    tree = {"storage": {"inmemory": {}}, "scan": {"enabled": True}}
    services = create_services(parse_config(tree))
    assert services.vulndb is None
    assert [job.name for job in scan_jobs(services)] == ["scan-0"]
    assert asyncio.run(services.scans.rescan()) == 0  # type: ignore[union-attr]


def test_the_audit_log_records_finished_scans() -> None:
    from dockyard.audit.log import record_of

    event = ScanFinished("app", "sha256:1", "rescan", "done", (("high", 2), ("low", 0)))
    assert record_of(event) == {
        "action": "rescan",
        "repository": "app",
        "digest": "sha256:1",
        "state": "done",
        "findings": {"high": 2, "low": 0},
    }
    assert (record_of(ScanFinished("app", "sha256:1", "push", "failed")) or {})["action"] == "scan"
