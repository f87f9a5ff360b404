"""Scheduled maintenance: garbage collection, retention, the purge of stale uploads, and the
reconcile of the listing index with the store (``storage.index``, with ``database.dsn``).

Every worker process (on every replica) runs one :class:`Scheduler`, and each job runs on one
process at a time: the one holding the job's lease in the coordinator. A leader renews its lease
every third of :data:`LEASE_SECONDS` while it lives (also during a long run), so it keeps the job;
if it dies, its lease expires and the next process to look takes over. A job runs when its
leader's schedule says it is due (a random first delay, then every ``interval``), by the
coordinator's clock. The jobs keep their own locks too (the GC's run lock, the retention lock),
so a collection started by hand (CLI, admin API) still never overlaps a scheduled one.

This used to live in the HTTP dispatcher, where every worker ran every loop and the locks alone
kept them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from dockyard.config import Config
from dockyard.coord.base import Coordinator
from dockyard.errors import LockBusy, Unavailable
from dockyard.storage.gc import CollectionRunning, GCOptions, collect
from dockyard.storage.registry import Registry
from dockyard.storage.retention import apply as apply_retention
from dockyard.storage.retention import policy_from_config

log = logging.getLogger("dockyard.maintenance")
LEASE_SECONDS = 60.0
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # also the lease's name
    interval: float  # seconds between runs
    first_delay: float  # seconds after start before the first run (jitter)
    run: Callable[[], Awaitable[None]]


def holder_id() -> str:
    """Who this process is, in the coordinator's lease table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    def __init__(
        self,
        coordinator: Coordinator,
        jobs: list[Job],
        *,
        holder: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.coordinator = coordinator
        self.jobs = jobs
        self.holder = holder or holder_id()
        self.lease_seconds = lease_seconds
        self.sleep = sleep
        self._due: dict[str, float] = {}
        self._running: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def schedule(self) -> None:
        """Set each job's first run, ``first_delay`` from now by the coordinator's clock."""
        now = await self.coordinator.now()
        for job in self.jobs:
            self._due[job.name] = now + job.first_delay

    async def step(self, job: Job) -> bool:
        """One look at a job: take or renew its lease, and run it if this process leads and the
        job is due. True if it ran."""
        if job.name in self._running:  # a lease is per process: never run a job twice in one
            return False
        if not await self.coordinator.acquire_lease(job.name, self.holder, self.lease_seconds):
            return False
        if job.name in self._running or await self.coordinator.now() < self._due[job.name]:
            return False
        self._running.add(job.name)
        renewing = asyncio.ensure_future(self._renew(job))
        try:
            await job.run()
        except Unavailable as exc:  # the store or the database is down: expected, no traceback
            log.error("maintenance job failed", extra={"job": job.name, "error": str(exc)})
        except Exception:
            log.exception("maintenance job failed", extra={"job": job.name})
        finally:
            renewing.cancel()
            await asyncio.wait([renewing])  # unlike awaiting it, never swallows our own cancellation
            self._due[job.name] = await self.coordinator.now() + job.interval
            self._running.discard(job.name)
        return True

    async def _renew(self, job: Job) -> None:
        """Keep the lease while a long run goes on."""
        while True:
            await self.sleep(self.lease_seconds / 3)
            if not await self.coordinator.acquire_lease(job.name, self.holder, self.lease_seconds):
                log.warning("maintenance lease lost during a run", extra={"job": job.name})

    async def _loop(self, job: Job) -> None:
        while True:
            try:
                await self.step(job)
                wait = self._due[job.name] - await self.coordinator.now()
                if wait <= 0:
                    # Due, yet not run here: another process leads (or this one is still running
                    # it). Look again when a lease could have changed hands, not at once: a
                    # follower past its due time looped without sleeping, two coordinator calls
                    # per turn, a third of a core per worker and a stream of database queries.
                    wait = self.lease_seconds / 3
            except Unavailable as exc:  # tried again a third of a lease later
                log.error("maintenance scheduling failed", extra={"job": job.name, "error": str(exc)})
                wait = self.lease_seconds / 3
            except Exception:
                log.exception("maintenance scheduling failed", extra={"job": job.name})
                wait = self.lease_seconds / 3
            await self.sleep(min(max(wait, 0.0), self.lease_seconds / 3))

    async def start(self) -> None:
        await self.schedule()
        self._tasks = [asyncio.create_task(self._loop(job)) for job in self.jobs]

    async def stop(self) -> None:
        """Stop the loops and give the leases up, so another process takes over at once."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for job in self.jobs:
            with contextlib.suppress(Exception):
                await self.coordinator.release_lease(job.name, self.holder)


def _jitter(low: float, high: float) -> float:
    """A first delay, so that processes started together do not all look at once."""
    return random.uniform(low, high)  # noqa: S311 - not for secrets


def jobs_from_config(config: Config, registry: Registry, coordinator: Coordinator) -> list[Job]:
    """The jobs the configuration enables (in read-only mode only the index's), with jittered
    first runs."""
    maintenance = config.storage.maintenance
    if maintenance.readonly.enabled:
        return index_jobs(config, registry)
    jobs = []
    purging = maintenance.uploadpurging
    if purging.enabled:

        async def purge() -> None:
            if purging.dryrun:
                log.info("upload purge dry run: nothing deleted")
                return
            now = time.time()
            count = await registry.purge_uploads(purging.age, now)
            # Writes that died in the middle leave work in the store no session points to any
            # more: an object store's multipart uploads (billed until aborted), a filesystem's
            # temporaries. What began before the purge's age is abandoned.
            aborted = await registry.driver.cleanup(now - purging.age)
            log.info("purged stale uploads", extra={"count": count, "writes_aborted": aborted})

        jobs.append(Job("upload-purge", purging.interval, _jitter(0, min(purging.interval, 3600.0)), purge))
    gc = maintenance.gc
    if gc.enabled:

        async def collect_garbage() -> None:
            options = GCOptions(dry_run=gc.dryrun, delete_untagged=gc.deleteuntagged, grace_seconds=gc.grace)
            try:
                await collect(registry, options)
            except CollectionRunning:
                log.debug("scheduled collection skipped: another is running")

        jobs.append(Job("gc", gc.interval, _jitter(gc.interval / 10, gc.interval), collect_garbage))
    retention = config.retention
    if retention.interval > 0 and retention.policies:
        policies = [policy_from_config(p) for p in retention.policies]

        async def apply() -> None:
            try:
                async with coordinator.lock("retention", wait=False):
                    report = await apply_retention(
                        registry, policies, dry_run=False, force=retention.force, grace_seconds=gc.grace
                    )
            except LockBusy:
                log.debug("scheduled retention skipped: it is being applied already")
                return
            for deletion in report.deleted:
                log.info(
                    "retention deleted tag",
                    extra={"repository": deletion.repository, "tag": deletion.tag, "rule": deletion.rule},
                )
            for refused in report.refused:
                log.warning("retention refused", extra=refused)

        first = _jitter(retention.interval / 10, retention.interval)
        jobs.append(Job("retention", retention.interval, first, apply))
    return jobs + index_jobs(config, registry)


def index_jobs(config: Config, registry: Registry) -> list[Job]:
    """The listing index's reconcile (with ``database.dsn``; also in read-only mode: it writes the
    index, never the store). 0 as the interval: only ``dockyard index rebuild``."""
    index = registry.index
    interval = config.database.index.reconcileinterval
    if index is None or interval <= 0:
        return []

    async def reconcile() -> None:
        report = await index.reconcile()
        log.info("listing index reconciled with the store", extra=asdict(report))

    return [Job("index-reconcile", interval, _jitter(0, min(interval, 60.0)), reconcile)]
