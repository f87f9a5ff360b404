"""Failed-login throttling shared by every replica (``database.dsn``).

One row per failure in ``login_failures`` (key, time by the database's clock), so attempts made
on different replicas and workers count together against ``auth.throttle.attempts`` per
``window``. Each failure also drops every row older than the window (indexed by time), so the
table holds at most the failures of one window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dockyard.auth.throttle import wait_for
from dockyard.coord.postgres import NOW, PostgresCoordinator


class PostgresThrottle:
    def __init__(self, coordinator: PostgresCoordinator, attempts: int, window: float) -> None:
        self.coordinator = coordinator
        self.attempts = max(1, attempts)
        self.window = window

    async def retry_after(self, keys: Sequence[str]) -> int:
        rows = await self.coordinator.fetch_all(
            f"SELECT key, array_agg(at ORDER BY at), {NOW} FROM login_failures"
            f" WHERE key = ANY(%(keys)s) AND at > {NOW} - %(window)s GROUP BY key",
            keys=list(keys),
            window=self.window,
        )
        wait = max((wait_for(times, self.attempts, self.window, now) for _, times, now in rows), default=0.0)
        return math.ceil(wait) if wait > 0 else 0

    async def failure(self, keys: Sequence[str]) -> None:
        await self.coordinator.fetch_all(
            f"WITH gone AS (DELETE FROM login_failures WHERE at <= {NOW} - %(window)s)"
            f" INSERT INTO login_failures (key, at) SELECT k, {NOW} FROM unnest(%(keys)s::text[]) AS k"
            " RETURNING key",
            keys=list(keys),
            window=self.window,
        )

    async def success(self, account_key: str) -> None:
        await self.coordinator.fetch_all(
            "DELETE FROM login_failures WHERE key = %(key)s RETURNING key", key=account_key
        )
