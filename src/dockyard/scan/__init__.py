"""SBOMs for pushed images, made with Syft and stored as OCI referrers (issue #14, its SBOM half).

``subscriber`` queues pushed images; ``queue`` keeps the jobs (store files, or PostgreSQL with
``database.dsn``); ``service`` drains the queue in ``scan.concurrency`` leased slots; ``scanner``
decides per image (each platform of an index) whether a client's SBOM is there already or one
must be made; ``layout`` writes the image from the store as an OCI layout; ``syft`` runs Syft on
it; ``sbom`` stores the SPDX and CycloneDX documents as referrers of the image; ``vulns`` matches
the CycloneDX document against the advisory database (``vulndb``) when there is one; the
service's ``rescan`` queues a re-match of the stored SBOMs when the database's revision moves;
``report`` turns a result into what the admin API, ``dockyard vulns`` and the UI show.

The CycloneDX document is the seam to advisory matching: each component carries its purl, and
Syft's ``syft:location:N:layerID`` properties name the layer (by its diff id, the digest of the
uncompressed layer, as in the image config's ``rootfs.diff_ids``) the package was found in.
"""

from __future__ import annotations

from dockyard.config import Config
from dockyard.coord.base import Coordinator
from dockyard.scan.queue import PgScanQueue, ScanQueue, StoreScanQueue
from dockyard.scan.scanner import Scanner
from dockyard.scan.service import ScanService
from dockyard.scan.subscriber import ScanSubscriber
from dockyard.scan.syft import Syft
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.registry import Registry
from dockyard.vulndb.store import VulnStore

__all__ = ["ScanService", "create_queue", "create_service"]


def create_queue(config: Config, driver: CheckedDriver, coordinator: Coordinator) -> ScanQueue:
    """PostgreSQL's tables with ``database.dsn`` (replicas share one queue), else store files."""
    if config.database.dsn:
        from dockyard.coord.postgres import PostgresCoordinator

        if not isinstance(coordinator, PostgresCoordinator):
            raise TypeError(f"database.dsn is set, but the coordinator is {coordinator.name}")
        return PgScanQueue(coordinator)
    return StoreScanQueue(driver)


def create_service(
    config: Config,
    registry: Registry,
    queue: ScanQueue,
    vulndb: VulnStore | None = None,
    intake: ScanSubscriber | None = None,
) -> ScanService:
    """The scanning service over ``registry`` (with ``vulndb``: SBOMs, then their findings);
    Syft is looked for when a scan runs, not here, so a registry without Syft still starts (its
    scans fail and say why)."""
    settings = config.scan
    syft = Syft(settings.syft, niceness=settings.niceness, timeout=settings.timeout)
    scanner = Scanner(registry, syft, workdir=settings.workdir or None, vulndb=vulndb)
    return ScanService(registry, queue, scanner, registry.coordinator, intake=intake)
