"""Failed-login throttling: a sliding window of failures per key (client address, account).

Behind :class:`LoginThrottle`. Without a database, :class:`Throttle` keeps the state per worker
process (in memory): with N workers an address gets at most N x ``attempts`` tries per window,
and memory is bounded (the oldest keys are dropped past ``max_keys``). With ``database.dsn``,
``auth.pgthrottle.PostgresThrottle`` counts the failures of every worker on every replica
together, by the database's clock.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Protocol


class LoginThrottle(Protocol):
    async def retry_after(self, keys: Sequence[str]) -> int:
        """Seconds until every key may try again; 0 when none is blocked."""

    async def failure(self, keys: Sequence[str]) -> None: ...

    async def success(self, account_key: str) -> None:
        """A good login clears the account's failures (not the address's)."""


def wait_for(times: Sequence[float], attempts: int, window: float, now: float) -> float:
    """How long until fewer than ``attempts`` of the failures at ``times`` (ascending, within the
    window) remain in the window: the ``attempts``-th newest must leave it."""
    if len(times) < attempts:
        return 0.0
    return times[len(times) - attempts] + window - now


class Throttle:
    """Failures in this process's memory."""

    def __init__(
        self,
        attempts: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.attempts = max(1, attempts)
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    async def retry_after(self, keys: Sequence[str]) -> int:
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None:
                wait = max(wait, wait_for(times, self.attempts, self.window, now))
        return math.ceil(wait) if wait > 0 else 0

    async def failure(self, keys: Sequence[str]) -> None:
        now = self.clock()
        for key in keys:
            times = self._failures.pop(key, None) or deque(maxlen=self.attempts)
            times.append(now)
            self._failures[key] = times
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    async def success(self, account_key: str) -> None:
        self._failures.pop(account_key, None)


class NoThrottle:
    """``auth.throttle.enabled: false``."""

    async def retry_after(self, keys: Sequence[str]) -> int:
        return 0

    async def failure(self, keys: Sequence[str]) -> None:
        return None

    async def success(self, account_key: str) -> None:
        return None
