"""Storage quotas per repository glob (``team-a/**``), each blob counted once per quota.

Usage is derived from the store (the blobs linked by the repositories a rule covers) and cached
per process for ``CACHE_SECONDS``, with this process's own additions counted at once; with several
workers pushing into one namespace at the same moment, a quota can be overshot by what they
upload concurrently within that window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dockyard.errors import QuotaExceeded
from dockyard.globs import glob_match
from dockyard.oci.digest import Digest
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.linked import linked_sizes, repositories

CACHE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class QuotaRule:
    repositories: str
    limit: int  # bytes


@dataclass(slots=True)
class QuotaUsage:
    rule: QuotaRule
    used: int
    blobs: set[Digest]
    computed: float


class Quotas:
    def __init__(self, driver: CheckedDriver, rules: list[QuotaRule]) -> None:
        self.driver = driver
        self.rules = rules
        self._usage: dict[str, QuotaUsage] = {}

    def rule_for(self, name: str) -> QuotaRule | None:
        return next((r for r in self.rules if glob_match(r.repositories, name)), None)

    async def usage(self, rule: QuotaRule, *, fresh: bool = False) -> QuotaUsage:
        cached = self._usage.get(rule.repositories)
        if cached is not None and not fresh and time.monotonic() - cached.computed < CACHE_SECONDS:
            return cached
        names = await repositories(self.driver, include_without_manifests=True)
        covered = [n for n in names if glob_match(rule.repositories, n)]
        sizes: dict[Digest, int] = {}  # each blob once per quota
        for linked in (await linked_sizes(self.driver, covered)).values():
            sizes.update(linked)
        usage = QuotaUsage(rule, sum(sizes.values()), set(sizes), time.monotonic())
        self._usage[rule.repositories] = usage
        return usage

    async def check(self, name: str, digest: Digest | None, size: int) -> None:
        """Raise QuotaExceeded if storing ``size`` more bytes in ``name`` would exceed its quota."""
        rule = self.rule_for(name)
        if rule is None or size <= 0:
            return
        usage = await self.usage(rule)
        if digest is not None and digest in usage.blobs:
            return  # already counted in this quota
        if usage.used + size > rule.limit:
            raise QuotaExceeded(rule.repositories, rule.limit, usage.used, size)

    @staticmethod
    async def report_of(quotas: Quotas | None) -> list[dict[str, Any]]:
        """Every quota with its limit and current use (recomputed now)."""
        if quotas is None:
            return []
        out = []
        for rule in quotas.rules:
            used = await quotas.usage(rule, fresh=True)
            out.append({"repositories": rule.repositories, "limit": rule.limit, "used": used.used})
        return out

    def added(self, name: str, digest: Digest, size: int) -> None:
        rule = self.rule_for(name)
        usage = self._usage.get(rule.repositories) if rule else None
        if usage is not None and digest not in usage.blobs:
            usage.blobs.add(digest)
            usage.used += size
