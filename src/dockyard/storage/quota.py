"""Storage quotas per repository glob (``team-a/**``), each blob counted once per quota.

Usage is derived from the store (the blobs linked by the repositories a rule covers); where the
running count is kept between walks is a :class:`QuotaLedger`. Without a database,
:class:`LocalLedger` caches it per process for ``CACHE_SECONDS``, with this process's own
additions counted at once: with several workers pushing into one namespace at the same moment,
a quota can be overshot by what they upload concurrently within that window. With
``database.dsn``, ``storage.quota_pg.PostgresLedger`` keeps one count for every replica, so what
one replica stored counts against a push through any other at once.

A rule may state a warning threshold (``quotas[].warning``, a percentage of its limit): the push
whose blob takes the rule's usage from below it to at or above it is told to the events' sink as
a ``QuotaWarning`` (webhooks' ``quota-warning``), once per crossing, after the blob is stored;
usage falling back under it (deletes, collection) arms it again. Without a database each worker
decides from its own count, so a crossing made by two workers' concurrent pushes can be told by
both or, within the cache window, by neither; with ``database.dsn`` the count is the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dockyard.errors import QuotaExceeded
from dockyard.events import EventSink, NullSink, QuotaWarning
from dockyard.globs import glob_match
from dockyard.oci.digest import Digest
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.linked import linked_sizes, repositories

CACHE_SECONDS = 10.0
Scan = Callable[[], Awaitable[dict[Digest, int]]]


@dataclass(frozen=True, slots=True)
class QuotaRule:
    repositories: str
    limit: int  # bytes
    warning: int | None = None  # bytes: a push reaching this is told (``QuotaWarning``)


class QuotaLedger(Protocol):
    """Where a quota's count is kept between walks of the store."""

    async def usage(
        self, rule: QuotaRule, digest: Digest | None, scan: Scan, *, fresh: bool = False
    ) -> tuple[int, bool]:
        """(bytes the rule's repositories use, whether ``digest`` is among them); ``scan`` walks
        the store (the truth) when the kept count is older than ``CACHE_SECONDS``, or ``fresh``."""

    async def added(self, rule: QuotaRule, digest: Digest, size: int) -> int | None:
        """Count a blob just stored under ``rule`` (once); the rule's usage after it when this
        call counted it and the rule has a ``warning`` (None otherwise, or when not known)."""


@dataclass(slots=True)
class QuotaUsage:
    used: int
    blobs: set[Digest]
    computed: float


class LocalLedger:
    """This process's cache of each rule's usage."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._usage: dict[str, QuotaUsage] = {}

    async def usage(
        self, rule: QuotaRule, digest: Digest | None, scan: Scan, *, fresh: bool = False
    ) -> tuple[int, bool]:
        cached = self._usage.get(rule.repositories)
        if cached is None or fresh or self.clock() - cached.computed >= CACHE_SECONDS:
            sizes = await scan()
            cached = QuotaUsage(sum(sizes.values()), set(sizes), self.clock())
            self._usage[rule.repositories] = cached
        return cached.used, digest is not None and digest in cached.blobs

    async def added(self, rule: QuotaRule, digest: Digest, size: int) -> int | None:
        usage = self._usage.get(rule.repositories)
        if usage is not None and digest not in usage.blobs:
            usage.blobs.add(digest)
            usage.used += size
            return usage.used
        return None


class Quotas:
    def __init__(
        self,
        driver: CheckedDriver,
        rules: list[QuotaRule],
        ledger: QuotaLedger | None = None,
        events: EventSink | None = None,
    ) -> None:
        self.driver = driver
        self.rules = rules
        self.ledger: QuotaLedger = ledger if ledger is not None else LocalLedger()
        self.events = events or NullSink()

    def rule_for(self, name: str) -> QuotaRule | None:
        return next((r for r in self.rules if glob_match(r.repositories, name)), None)

    def _scan(self, rule: QuotaRule) -> Scan:
        async def scan() -> dict[Digest, int]:
            names = await repositories(self.driver, include_without_manifests=True)
            covered = [n for n in names if glob_match(rule.repositories, n)]
            sizes: dict[Digest, int] = {}  # each blob once per quota
            for linked in (await linked_sizes(self.driver, covered)).values():
                sizes.update(linked)
            return sizes

        return scan

    async def used(self, rule: QuotaRule, *, fresh: bool = False) -> int:
        used, _ = await self.ledger.usage(rule, None, self._scan(rule), fresh=fresh)
        return used

    async def check(self, name: str, digest: Digest | None, size: int) -> None:
        """Raise QuotaExceeded if storing ``size`` more bytes in ``name`` would exceed its quota."""
        rule = self.rule_for(name)
        if rule is None or size <= 0:
            return
        used, counted = await self.ledger.usage(rule, digest, self._scan(rule))
        if counted:
            return  # already counted in this quota
        if used + size > rule.limit:
            raise QuotaExceeded(rule.repositories, rule.limit, used, size)

    @staticmethod
    async def report_of(quotas: Quotas | None) -> list[dict[str, Any]]:
        """Every quota with its limit and current use (recomputed now)."""
        if quotas is None:
            return []
        out = []
        for rule in quotas.rules:
            used = await quotas.used(rule, fresh=True)
            out.append({"repositories": rule.repositories, "limit": rule.limit, "used": used})
        return out

    async def added(self, name: str, digest: Digest, size: int) -> None:
        """Count a blob just stored in ``name``; tell a crossing of its rule's warning threshold."""
        rule = self.rule_for(name)
        if rule is None:
            return
        used = await self.ledger.added(rule, digest, size)
        if used is not None and rule.warning is not None and used - size < rule.warning <= used:
            self.events.emit(QuotaWarning(name, rule.repositories, rule.limit, rule.warning, used))
