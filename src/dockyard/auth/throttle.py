"""Failed-login throttling: a sliding window of failures per key (client address, account).

State is per worker process (in memory); with N workers an address gets at most N x ``attempts``
tries per window. Memory is bounded: the oldest keys are dropped past ``max_keys``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable


class Throttle:
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

    def retry_after(self, keys: Iterable[str]) -> int:
        """Seconds until every key may try again; 0 when none is blocked."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.attempts:
                wait = max(wait, times[len(times) - self.attempts] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failure(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            times = self._failures.pop(key, None) or deque(maxlen=self.attempts)
            times.append(now)
            self._failures[key] = times
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def success(self, account_key: str) -> None:
        """A good login clears the account's failures (not the address's)."""
        self._failures.pop(account_key, None)


class NoThrottle(Throttle):
    def __init__(self) -> None:
        super().__init__(1, 0.0)

    def retry_after(self, keys: Iterable[str]) -> int:
        return 0

    def failure(self, keys: Iterable[str]) -> None:
        return None
