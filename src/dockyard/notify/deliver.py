"""Sending the queue to the endpoints: one process at a time, in order, until each says 2xx.

Every worker runs a :class:`Deliverer`; the one holding the coordinator's ``notifications`` lease
sends, the others wait to take over if it dies (the lease expires after ``notifications.lease``,
30 s by default). Per endpoint, the events it has not had are sent in queue order (the time each
spool file's write began, then the events' order in it: ``notify.spool``), at most
:data:`BATCH` and :data:`BODY` bytes of them per envelope, an envelope made of slices of the
files. A failure (no answer within ``timeout``, or a status outside 2xx) retries from the same
event after ``backoff``, doubled per consecutive failure up to ``maxbackoff``, in envelopes halved
per consecutive failure (:func:`envelope_size`), so the order per repository (and overall) is
kept and nothing is skipped while the endpoint is down. After ``threshold`` consecutive failures
the endpoint is reported failing.

Each endpoint's progress (how many events of each spool file it has had) and health (failures,
last error, last success) live in ``_dockyard/notifications/endpoints/<name>.json``, written after
each step: a failed attempt, or up to :data:`STEP` events sent envelope after envelope. A sender
that dies between an endpoint's 2xx and that write sends those envelopes again (at least once).
Past ``notifications.maxpending`` waiting events, the oldest are dropped for that endpoint,
counted and logged. A spool file every enabled endpoint has had is deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dockyard.config import Endpoint, Notifications
from dockyard.coord.base import Coordinator
from dockyard.errors import PathNotFound
from dockyard.metrics.collectors import Metrics
from dockyard.notify.envelope import wants
from dockyard.notify.leader import LeasedSender, Sleep
from dockyard.notify.spool import Batch, Record, Spool, SpoolFile
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

log = logging.getLogger("dockyard.notify")
# Events per envelope at most. The sender's CPU per event (in one process, two workers' spool
# files interleaved, posting to ``bench.receiver`` on loopback, when each event was still handled
# one by one): 17.5 us at 32 an envelope, 9.1 at 128, 10.2-10.9 at 256 and 9.1 at 512: the
# per-request part stops mattering past 128.
BATCH = 128
# Bytes of events per envelope at most (an event larger than that goes alone): under the 100 KB
# a web framework's JSON body parser commonly accepts (Express's default), where 128 events with
# long names and user agents would not be.
BODY = 64 * 1024
STEP = 1024  # events a step sends to an endpoint (envelope after envelope) before it writes progress
REDELIVER = "notifications-redeliver"  # the coordinator's topic bumped by ``redeliver``


def _now_iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class EndpointState:
    """What is stored per endpoint: its place in the queue and its health."""

    progress: dict[str, int] = field(default_factory=dict)  # spool file → events it has had
    failures: int = 0  # consecutive
    last_error: str | None = None
    last_error_at: str | None = None
    last_success_at: str | None = None
    delivered: int = 0
    dropped: int = 0
    retry_at: float = 0.0  # epoch seconds; not before this after a failure

    def to_json(self) -> dict[str, Any]:
        return {
            "progress": self.progress,
            "failures": self.failures,
            "lastError": self.last_error,
            "lastErrorAt": self.last_error_at,
            "lastSuccessAt": self.last_success_at,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "retryAt": self.retry_at,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EndpointState:
        return cls(
            progress={str(k): int(v) for k, v in raw.get("progress", {}).items()},
            failures=int(raw.get("failures", 0)),
            last_error=raw.get("lastError"),
            last_error_at=raw.get("lastErrorAt"),
            last_success_at=raw.get("lastSuccessAt"),
            delivered=int(raw.get("delivered", 0)),
            dropped=int(raw.get("dropped", 0)),
            retry_at=float(raw.get("retryAt", 0.0)),
        )


def record_attempt(
    state: EndpointState,
    endpoint: Endpoint,
    error: str | None,
    count: int,
    now: float,
    metrics: Metrics | None,
) -> None:
    """One envelope's outcome in the endpoint's health (both senders): on success the events are
    counted and the backoff cleared; on failure the next try waits ``backoff`` doubled per
    consecutive failure up to ``maxbackoff``, and the endpoint is reported failing (logged once)
    at ``threshold`` failures."""
    if metrics is not None:
        metrics.webhook_deliveries.labels(endpoint.name, "ok" if error is None else "failed").inc()
    if error is None:
        state.delivered += count
        state.failures, state.retry_at = 0, 0.0
        state.last_success_at = _now_iso(now)
        return
    state.failures += 1
    state.last_error, state.last_error_at = error, _now_iso(now)
    state.retry_at = now + min(endpoint.backoff * 2 ** (state.failures - 1), endpoint.maxbackoff)
    if state.failures == endpoint.threshold:
        log.warning("notification endpoint failing", extra={"endpoint": endpoint.name, "error": error})


def envelope_size(failures: int) -> int:
    """How many events the next envelope holds: :data:`BATCH`, halved per consecutive failure
    down to one, so a receiver too slow for a full envelope within its ``timeout``, or one that
    refuses large bodies, still moves on; a success sends full envelopes again."""
    return max(1, BATCH >> min(failures, BATCH.bit_length()))


# One envelope of the spool's events: ``(file, i, j)`` runs of events ``i`` to ``j - 1``, in order.
Runs = list[tuple[str, int, int]]


def envelope(records: list[Record]) -> list[Record]:
    """The longest prefix of ``records`` (at least one) whose events fit in :data:`BODY` bytes
    (the outbox's rows; the spool's files are cut by :meth:`Deliverer._envelopes`)."""
    body = 0
    for n, record in enumerate(records):
        body += len(record.raw) + 1
        if n and body > BODY:
            return records[:n]
    return records


def state_path(name: str) -> str:
    return f"{paths.NOTIFICATION_ENDPOINTS}/{name}.json"


async def load_state(driver: CheckedDriver, name: str) -> EndpointState:
    try:
        return EndpointState.from_json(json.loads(await driver.get_content(state_path(name))))
    except PathNotFound:
        return EndpointState()


def pending_count(state: EndpointState, files: list[SpoolFile]) -> int:
    return sum(max(0, f.count - state.progress.get(f.name, 0)) for f in files)


class Deliverer(LeasedSender):
    def __init__(
        self,
        spool: Spool,
        settings: Notifications,
        coordinator: Coordinator,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.spool = spool
        self.driver = spool.driver
        self.settings = settings
        self.endpoints = [e for e in settings.endpoints if not e.disabled]
        self.maxpending = settings.maxpending
        self.coordinator = coordinator
        self.metrics = metrics
        self.clock = clock
        super().__init__(coordinator, self.endpoints, sleep=sleep, lease_seconds=settings.lease)
        self._batches: dict[str, Batch] = {}
        # endpoint name -> file -> whether the endpoint wants each of its events (filters only)
        self._wanted: dict[str, dict[str, list[bool]]] = {e.name: {} for e in self.endpoints}
        self._states: dict[str, EndpointState] = {}
        self._redeliver_seen = 0

    def lost_lead(self) -> None:
        self._states.clear()  # another sender moves the endpoints on: re-read when leading again
        if self.metrics is not None:
            for endpoint in self.endpoints:
                self.metrics.webhook_queue.labels(endpoint.name).set(0)

    async def purge(self, name: str) -> int:
        """Mark every queued event as had by endpoint ``name`` (counted as dropped), and delete
        the spool files every endpoint has had; how many events it drops. Only while holding the
        lease: a running sender keeps its endpoints' progress in memory."""
        files = await self.spool.files()
        state = await load_state(self.driver, name)
        dropped = pending_count(state, files)
        state.progress = {f.name: f.count for f in files}
        state.dropped += dropped
        state.failures, state.retry_at = 0, 0.0
        await self._save(name, state, files)
        self._states.clear()
        states = [await load_state(self.driver, e.name) for e in self.endpoints]
        await self.spool.remove(
            [f.name for f in files if all(s.progress.get(f.name, 0) >= f.count for s in states)]
        )
        return dropped

    async def redeliver(self, name: str) -> int:
        """Send endpoint ``name``'s waiting events at the next round instead of after its
        backoff (its receiver is back); how many wait. From the CLI, only while holding the lease,
        as purge; from a running registry's UI, on any worker: the store's state is reset and
        :data:`REDELIVER` bumped, and the sender re-reads its endpoints' state at its next step
        (while an endpoint is backing off the sender writes its state only when it drops events
        at the cap, so the reset is not written over)."""
        files = await self.spool.files()
        state = await load_state(self.driver, name)
        state.failures, state.retry_at = 0, 0.0
        await self._save(name, state, files)
        self._states.clear()
        await self.coordinator.bump(REDELIVER)
        return pending_count(state, files)

    async def waiting(self, name: str, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` events endpoint ``name`` has not had, in queue order (the UI)."""
        files = await self.spool.files()
        state = await load_state(self.driver, name)
        endpoint = next(e for e in self.endpoints if e.name == name)
        found: list[dict[str, Any]] = []
        for f in files:
            if state.progress.get(f.name, 0) >= f.count:
                continue
            for record in (await self.spool.read(f.name))[state.progress.get(f.name, 0) :]:
                if wants(endpoint, record.action, record.media_type):
                    found.append(record.event)
                    if len(found) >= limit:
                        return found
        return found

    # -- one round ------------------------------------------------------------------------------

    async def step(self) -> bool:
        """Send one envelope to each endpoint that is due and has events waiting; delete the
        spool files all have had. True when some endpoint still has events it could be sent now."""
        generation = await self.coordinator.generation(REDELIVER)
        if generation != self._redeliver_seen:  # an endpoint's backoff was cleared: re-read
            self._redeliver_seen = generation
            self._states.clear()
        files = await self.spool.files()
        names = {f.name for f in files}
        for stale in set(self._batches) - names:
            del self._batches[stale]
            for wanted_by in self._wanted.values():
                wanted_by.pop(stale, None)
        for f in files:
            if f.name not in self._batches:
                self._batches[f.name] = await self.spool.batch(f.name)
        results = await asyncio.gather(*(self._endpoint_step(e, files) for e in self.endpoints))
        finished = [
            f.name
            for f in files
            if all(self._states[e.name].progress.get(f.name, 0) >= f.count for e in self.endpoints)
        ]
        if finished:
            await self.spool.remove(finished)
            for state in self._states.values():
                for name in finished:
                    state.progress.pop(name, None)
        return any(results)

    async def _state(self, name: str) -> EndpointState:
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = await load_state(self.driver, name)
        return state

    async def _save(self, name: str, state: EndpointState, files: list[SpoolFile]) -> None:
        present = {f.name for f in files}
        state.progress = {k: v for k, v in state.progress.items() if k in present}
        await self.driver.put_content(state_path(name), json.dumps(state.to_json()).encode())

    async def _endpoint_step(self, endpoint: Endpoint, files: list[SpoolFile]) -> bool:
        state = await self._state(endpoint.name)
        total = pending_count(state, files)
        if self.metrics is not None:
            self.metrics.webhook_queue.labels(endpoint.name).set(total)
        if not total:
            return False
        changed = False
        if total > self.maxpending:  # the oldest go, counted and logged
            dropped = left = total - self.maxpending
            for f in files:
                had = state.progress.get(f.name, 0)
                taken = min(left, f.count - had)
                if taken > 0:
                    state.progress[f.name] = had + taken
                    left -= taken
                    if not left:
                        break
            total -= dropped
            state.dropped += dropped
            self.handled += dropped
            changed = True
            log.warning(
                "notification queue full: oldest events dropped",
                extra={"endpoint": endpoint.name, "dropped": dropped, "maxpending": self.maxpending},
            )
            if self.metrics is not None:
                self.metrics.webhook_dropped.labels(endpoint.name).inc(dropped)
        now = self.clock()
        if now < state.retry_at:
            if changed:
                await self._save(endpoint.name, state, files)
            return False
        # Envelopes of the next events in order, until the step's share is sent or one fails;
        # the progress is written once after them (a sender that dies before that write sends
        # them again: at least once).
        handled, error = 0, None

        def size() -> int:
            return envelope_size(state.failures)

        for runs, skipped in self._envelopes(endpoint, files, dict(state.progress), size):
            for name, i, j in skipped:
                state.progress[name] = j
                handled += j - i
            if not runs:
                break
            count = sum(j - i for _, i, j in runs)
            error = await self._post(endpoint, [self._batches[name].span(i, j) for name, i, j in runs])
            record_attempt(state, endpoint, error, count, now, self.metrics)
            if error is not None:
                break
            for name, _, j in runs:
                state.progress[name] = j
            handled += count
            if handled >= STEP:
                break
            now = self.clock()
        self.handled += handled
        await self._save(endpoint.name, state, files)
        return error is None and total > handled

    def _envelopes(
        self, endpoint: Endpoint, files: list[SpoolFile], progress: dict[str, int], size: Callable[[], int]
    ) -> Iterator[tuple[Runs, Runs]]:
        """The waiting events cut into envelopes, in order: (the runs of events to send, at most
        ``size()`` as each envelope starts and :data:`BODY` bytes of them; the runs of ignored
        ones passed over just before them). An ignored event after an envelope's first ends it,
        so each file's progress stays an exact prefix. The work is per run, not per event: the
        byte limit is found by bisecting a file's ``ends``, and only an endpoint with filters
        looks at each event (once per file)."""
        filtered = bool(endpoint.ignore.actions or endpoint.ignoredmediatypes or endpoint.ignore.mediatypes)
        limit, body, count = size(), 0, 0
        runs: Runs = []
        skipped: Runs = []
        for f in files:
            batch = self._batches[f.name]
            i, n = progress.get(f.name, 0), len(batch)
            wanted = self._wanted_in(endpoint, f.name, batch) if filtered else None
            while i < n:
                stop = n
                if wanted is not None:
                    if not wanted[i]:
                        k = _index(wanted, True, i, n)
                        if runs:
                            yield runs, skipped
                            runs, skipped, limit, body, count = [], [], size(), 0, 0
                        skipped.append((f.name, i, k))
                        i = k
                        continue
                    stop = _index(wanted, False, i, n)
                stop = min(stop, i + limit - count)
                # Events i..j-1 with a comma each: batch.ends[j - 1] - batch.start(i) + 1 bytes.
                j = bisect_right(batch.ends, BODY - body - 1 + batch.start(i), i, stop)
                if j == i:
                    if count:  # full by bytes: this event starts the next envelope
                        yield runs, skipped
                        runs, skipped, limit, body, count = [], [], size(), 0, 0
                        continue
                    j = i + 1  # larger than a body: alone
                runs.append((f.name, i, j))
                body += batch.ends[j - 1] - batch.start(i) + 1
                count += j - i
                i = j
                if count >= limit:
                    yield runs, skipped
                    runs, skipped, limit, body, count = [], [], size(), 0, 0
        if runs or skipped:
            yield runs, skipped

    def _wanted_in(self, endpoint: Endpoint, name: str, batch: Batch) -> list[bool]:
        wanted_by = self._wanted[endpoint.name]
        found = wanted_by.get(name)
        if found is None:
            found = wanted_by[name] = [wants(endpoint, m[3], m[4]) for m in batch.meta]
        return found

    async def _post(self, endpoint: Endpoint, parts: list[bytes]) -> str | None:
        return await self.client.post(endpoint, parts)

    async def status(self) -> list[dict[str, Any]]:
        """Per endpoint, from the store (so any worker answers for the sender): events waiting,
        consecutive failures, last error and last success, delivered and dropped counts."""
        files = await self.spool.files()
        out = []
        for endpoint in self.settings.endpoints:
            state = await load_state(self.driver, endpoint.name)
            pending = 0 if endpoint.disabled else pending_count(state, files)
            out.append(status_row(endpoint, state, pending))
        return out


def _index(flags: list[bool], value: bool, start: int, stop: int) -> int:
    """The first position in ``flags[start:stop]`` holding ``value``, else ``stop``."""
    try:
        return flags.index(value, start, stop)
    except ValueError:
        return stop


def status_row(endpoint: Endpoint, state: EndpointState, pending: int) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "url": endpoint.url,
        "disabled": endpoint.disabled,
        "pending": pending,
        "failing": state.failures >= endpoint.threshold,
        "failures": state.failures,
        "lastError": state.last_error,
        "lastErrorAt": state.last_error_at,
        "lastSuccessAt": state.last_success_at,
        "delivered": state.delivered,
        "dropped": state.dropped,
    }
