"""Pull times as a subscriber of the registry's events (the first one).

A ``GET`` of a manifest is a pull of its digest, and of its tag when the client asked by tag.
docker and containerd never do that: they ``HEAD`` the tag, then ``GET`` the digest it answered.
So a tag resolved by a ``HEAD`` is remembered for a short while, and a ``GET`` of that digest
soon after in the same repository is credited to the tag too. A ``HEAD`` alone stays no pull
(tools that watch for new images send them often), and a ``GET`` by digest nobody resolved a tag
to stays a pull of the digest only.

The memory is per worker process; a client's ``HEAD`` and ``GET`` travel on one connection, so
they reach the same worker.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from dockyard.browse.pulls import PullLog
from dockyard.events import Event, ManifestPulled, TagResolved

# Long enough for a pull's HEAD and GET over a slow link, short enough that a later GET by
# digest by someone else is not credited to an old HEAD.
RESOLVE_WINDOW = 60.0
_MAX_RESOLVED = 4096  # tags resolved and not yet pulled, kept at most (the oldest go first)


class PullSubscriber:
    def __init__(
        self,
        pulls: PullLog,
        *,
        window: float = RESOLVE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pulls = pulls
        self.window = window
        self._clock = clock
        self._resolved: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    def emit(self, event: Event) -> None:
        if isinstance(event, TagResolved):
            key = (event.repository, event.digest)
            self._resolved.pop(key, None)
            self._resolved[key] = (event.tag, self._clock())
            while len(self._resolved) > _MAX_RESOLVED:
                self._resolved.popitem(last=False)
        elif isinstance(event, ManifestPulled):
            tag = event.tag if event.tag is not None else self._resolved_tag(event.repository, event.digest)
            self.pulls.record(event.repository, event.digest, tag)

    def _resolved_tag(self, repository: str, digest: str) -> str | None:
        resolved = self._resolved.get((repository, digest))
        if resolved is None:
            return None
        tag, when = resolved
        if self._clock() - when > self.window:
            del self._resolved[(repository, digest)]
            return None
        return tag
