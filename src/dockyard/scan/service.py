"""Scanning as a service: queue an image (on push, on demand), run the queue, tell what happened.

The queue is drained by ``scan.concurrency`` slots. Each slot is a scheduled job (``scan-0``,
``scan-1``, ...) run by ``maintenance.Scheduler``, so a slot runs in one process of all the
workers and replicas at a time (the coordinator's lease), and never more than that many Syft
processes run at once. Within a slot, each queued image is taken under the coordinator's lock
``scan-<key>`` without waiting: two slots never scan one image, and a scanner that died frees
its lock with its process (or database session), so the image is taken again from the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from dockyard.coord.base import Coordinator
from dockyard.errors import LockBusy, ManifestUnknown
from dockyard.oci.digest import Digest
from dockyard.scan.queue import QueuedScan, ScanQueue
from dockyard.scan.scanner import Scanner
from dockyard.storage.registry import Registry

log = logging.getLogger("dockyard.scan")


class ScanService:
    def __init__(
        self,
        registry: Registry,
        queue: ScanQueue,
        scanner: Scanner,
        coordinator: Coordinator,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.queue = queue
        self.scanner = scanner
        self.coordinator = coordinator
        self.clock = clock

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
                    result = await self.scanner.scan(job.repository, Digest.parse(job.digest))
                except ManifestUnknown:
                    result = {"state": "gone", "images": []}
                await self.queue.finish(job, result, self.clock())
                return result
        except LockBusy:
            return None

    async def drain_job(self) -> None:
        """One scheduled run of a slot (``maintenance.Job``)."""
        await self.drain()

    async def drain(self, limit: int = 100) -> int:
        """Scan what is queued (up to ``limit`` images); how many this call scanned."""
        done = 0
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
