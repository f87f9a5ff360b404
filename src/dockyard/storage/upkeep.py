"""On-demand maintenance over one registry (``storage.model.MaintenanceModel``): what the admin
API and the command line run, so neither reaches into the registry's quotas or hands the
registry to the collector and retention themselves. The scheduled jobs (``dockyard.maintenance``)
run the same operations."""

from __future__ import annotations

from typing import Any

from dockyard.storage import gc, retention
from dockyard.storage.quota import Quotas
from dockyard.storage.registry import Registry


class RegistryMaintenance:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def collect(self, options: gc.GCOptions, progress: gc.Progress | None = None) -> gc.GCReport:
        return await gc.collect(self.registry, options, progress)

    async def last_collection(self) -> dict[str, Any] | None:
        return await gc.last_report(self.registry)

    async def quota_report(self) -> list[dict[str, Any]]:
        return await Quotas.report_of(self.registry.quotas)

    async def apply_retention(
        self, policies: list[retention.Policy], *, dry_run: bool, force: bool, grace_seconds: float
    ) -> retention.RetentionReport:
        return await retention.apply(
            self.registry, policies, dry_run=dry_run, force=force, grace_seconds=grace_seconds
        )
