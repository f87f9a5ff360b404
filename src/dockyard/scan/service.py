"""Scanning as a service: queue an image (on push, on demand), run the queue, tell what happened.

The queue is drained by ``scan.concurrency`` slots. Each slot is a scheduled job (``scan-0``,
``scan-1``, ...) run by ``maintenance.Scheduler``, so a slot runs in one process of all the
workers and replicas at a time (the coordinator's lease), and never more than that many Syft
processes run at once. Within a slot, each queued image is taken under the coordinator's lock
``scan-<key>`` without waiting: two slots never scan one image, and a scanner that died frees
its lock with its process (or database session), so the image is taken again from the queue.

When the advisory database changes (``dockyard vulndb update``, from any machine: its
``revision()`` grows), the ``scan-rescan`` job queues every scanned image whose result was
matched at an older revision as a ``rescan`` job of the same queue. A rescan re-matches the
image's stored SBOM and never runs Syft; it is drained, locked and recorded like any scan, so it
survives restarts and runs once across workers and replicas. Each finished scan emits
``ScanFinished`` (the audit log records it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from dockyard.coord.base import Coordinator
from dockyard.errors import LockBusy, ManifestUnknown
from dockyard.events import ScanFinished
from dockyard.oci.digest import Digest
from dockyard.scan.queue import QueuedScan, ScanQueue
from dockyard.scan.scanner import Scanner
from dockyard.scan.subscriber import ScanSubscriber
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.scan")
RESCAN = "rescan"


def rematchable(result: dict[str, Any], revision: int) -> bool:
    """Whether a stored result has an SBOM to match and was matched before ``revision``."""
    images = result.get("images")
    has_sbom = isinstance(images, list) and any(isinstance(i, dict) and i.get("sboms") for i in images)
    matched_at = result.get("vulndbRevision")
    return has_sbom and (not isinstance(matched_at, int) or matched_at < revision)


def total_counts(result: dict[str, Any]) -> dict[str, int]:
    """The findings' counts by severity over every platform of a result (empty: none matched)."""
    total: dict[str, int] = {}
    for image in result.get("images") or []:
        for level, n in (image.get("counts") or {}).items():
            total[level] = total.get(level, 0) + int(n)
    return total


class ScanService:
    def __init__(
        self,
        registry: Registry,
        queue: ScanQueue,
        scanner: Scanner,
        coordinator: Coordinator,
        *,
        clock: Callable[[], float] = time.time,
        intake: ScanSubscriber | None = None,
    ) -> None:
        self.registry = registry
        self.intake = intake  # the push subscriber whose queue writes a drain waits for
        self.queue = queue
        self.scanner = scanner
        self.coordinator = coordinator
        self.clock = clock
        # The revision this process last queued rescans for (None: not yet, so the first run
        # after a start walks the results once; the results' own revisions are the truth).
        self._rescanned: int | None = None

    async def request(self, repository: str, reference: str | Digest, reason: str = "demand") -> QueuedScan:
        """Queue image ``reference`` (a tag or digest) of ``repository``; ``ManifestUnknown`` if
        there is none."""
        digest = await self.registry.resolve(repository, reference)
        await self.registry.manifests.get(repository, digest)  # ManifestUnknown when not there
        job = QueuedScan(repository, str(digest), reason, self.clock())
        await self.queue.add(job)
        return job

    async def status(self, repository: str, digest: str) -> dict[str, Any]:
        """Whether the image waits in the queue, and its last result."""
        queued = [
            j for j in await self.queue.pending(10_000) if j.repository == repository and j.digest == digest
        ]
        return {
            "repository": repository,
            "digest": digest,
            "queued": queued[0].to_json() if queued else None,
            "result": await self.queue.result(repository, digest),
        }

    async def run(self, job: QueuedScan) -> dict[str, Any] | None:
        """Scan one queued image, unless another scanner has it (None then)."""
        try:
            async with self.coordinator.lock(f"scan-{job.key}", wait=False):
                try:
                    result = await self.scanner.scan(
                        job.repository, Digest.parse(job.digest), generate=job.reason != RESCAN
                    )
                except ManifestUnknown:
                    result = {"state": "gone", "images": []}
                await self.queue.finish(job, result, self.clock())
                counts = tuple(total_counts(result).items())
                self.registry.events.emit(
                    ScanFinished(job.repository, job.digest, job.reason, result["state"], counts)
                )
                return result
        except LockBusy:
            return None

    async def rescan(self) -> int:
        """Queue a re-match of every image matched before the advisory database's current
        revision (those already queued keep their place); how many were queued."""
        vulndb = self.scanner.vulndb
        if vulndb is None:
            return 0
        revision = await vulndb.revision()
        if revision == self._rescanned:
            return 0
        waiting = {(j.repository, j.digest) for j in await self.queue.pending(1_000_000)}
        queued, busy = 0, False
        for result in await self.queue.results():
            target = (str(result.get("repository")), str(result.get("digest")))
            if not rematchable(result, revision):
                continue
            if target in waiting:  # may finish matched at an older revision: look again next run
                busy = True
                continue
            await self.queue.add(QueuedScan(*target, RESCAN, self.clock()))
            queued += 1
        if queued:
            log.info("advisories changed: images queued to be matched again", extra={"images": queued})
        if not busy:
            self._rescanned = revision
        return queued

    async def rescan_job(self) -> None:
        """One scheduled run of ``scan-rescan`` (``maintenance.Job``)."""
        await self.rescan()

    async def drain_job(self) -> None:
        """One scheduled run of a slot (``maintenance.Job``)."""
        await self.drain()

    async def drain(self, limit: int = 100) -> int:
        """Scan what is queued (up to ``limit`` images); how many this call scanned."""
        done = 0
        if self.intake is not None:
            await self.intake.settle()
        for job in await self.queue.pending(limit):
            try:
                result = await self.run(job)
            except Exception:
                log.exception("scan failed", extra={"repository": job.repository, "digest": job.digest})
                await self.queue.finish(job, {"state": "failed", "error": "internal error"}, self.clock())
                continue
            if result is not None:
                done += 1
                log.info(
                    "scan finished",
                    extra={"repository": job.repository, "digest": job.digest, "state": result["state"]},
                )
        return done
