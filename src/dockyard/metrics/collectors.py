"""The metrics a worker keeps, and the hooks that feed them.

Names follow Prometheus conventions: ``dockyard_<what>_total`` for counters, ``_seconds`` and
``_bytes`` for units. Label values come from closed sets (route names from the route table,
methods, statuses, storage operation names), so no client can grow the number of series.

Requests and storage calls are tallied in plain Python numbers per label set and handed to
prometheus-client at most :data:`FLUSH_SECONDS` later, in one go: in multiprocess mode every
``inc`` and ``observe`` writes a memory-mapped file under a lock (~6 us each, ~18 us for one
request's series, measured), against ~1 us for the tally. A scrape may so miss the last second's
requests, never count one twice. Rare events (collections, logins, webhooks, uploads in
progress) go straight in.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Request latency: a cached manifest answers in well under a millisecond, a large blob takes
# minutes; the histogram has to tell both apart.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
FLUSH_SECONDS = 1.0


@dataclass(slots=True)
class _Tally:
    """What one label set saw since the last flush; ``buckets`` as the histogram stores them
    (per bucket, not cumulative: a value counts in the first bucket whose bound is >= it)."""

    buckets: list[int]
    count: int = 0
    seconds: float = 0.0
    received: int = 0
    sent: int = 0
    children: tuple[Counter, Histogram, Counter | None, Counter | None] | None = field(default=None)


class Metrics:
    """Every metric of one worker, registered in a registry of its own (nothing global: a test
    may build several apps in one process)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "dockyard_http_requests_total",
            "HTTP requests answered, by route name, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "dockyard_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
            ["route", "method"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.received_bytes = Counter(
            "dockyard_http_request_bytes_total", "Request body bytes received", ["route"], registry=r
        )
        self.sent_bytes = Counter(
            "dockyard_http_response_bytes_total", "Response body bytes sent", ["route"], registry=r
        )
        self.uploads = Gauge(
            "dockyard_uploads_in_progress",
            "Upload requests receiving blob data right now",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.storage_ops = Counter(
            "dockyard_storage_operations_total",
            "Storage driver calls, by operation and outcome (ok, notfound, error)",
            ["operation", "outcome"],
            registry=r,
        )
        self.storage_seconds = Histogram(
            "dockyard_storage_operation_duration_seconds",
            "Storage driver call latency, by operation",
            ["operation"],
            buckets=STORAGE_BUCKETS,
            registry=r,
        )
        self.gc_runs = Counter(
            "dockyard_gc_runs_total",
            "Garbage collections finished (dry_run: only reported)",
            ["dry_run"],
            registry=r,
        )
        self.gc_freed = Counter(
            "dockyard_gc_freed_bytes_total", "Bytes freed by garbage collection", registry=r
        )
        self.gc_blobs = Counter(
            "dockyard_gc_deleted_blobs_total", "Blobs deleted by garbage collection", registry=r
        )
        self.login_failures = Counter(
            "dockyard_auth_failed_logins_total", "Logins refused for bad credentials", registry=r
        )
        self.login_throttled = Counter(
            "dockyard_auth_throttled_logins_total", "Logins refused unchecked: too many failures", registry=r
        )
        self.webhook_queue = Gauge(
            "dockyard_webhook_queue_depth",
            "Events waiting for delivery, per notification endpoint",
            ["endpoint"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "dockyard_webhook_deliveries_total",
            "Notification deliveries, per endpoint and outcome (ok, failed)",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.webhook_dropped = Counter(
            "dockyard_webhook_dropped_events_total",
            "Events dropped from a full queue (the oldest go first)",
            ["endpoint"],
            registry=r,
        )
        self._requests: dict[tuple[str, str, int], _Tally] = {}
        self._storage: dict[tuple[str, str], _Tally] = {}
        self._request_bounds = [*REQUEST_BUCKETS, float("inf")]
        self._storage_bounds = [*STORAGE_BUCKETS, float("inf")]
        self._flush_due = False

    def request(self, route: str, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        label = method if method in _METHODS else "other"
        key = (route, label, status)
        tally = self._requests.get(key)
        if tally is None:
            tally = self._requests[key] = _Tally([0] * len(self._request_bounds))
            tally.children = (
                self.requests.labels(route, label, str(status)),
                self.request_seconds.labels(route, label),
                self.received_bytes.labels(route),
                self.sent_bytes.labels(route),
            )
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(self._request_bounds, seconds)] += 1
        tally.received += received
        tally.sent += sent
        self._due()

    def storage_operation(self, operation: str, seconds: float, outcome: str) -> None:
        """``storage.drivers.checked.StorageObserver``: one driver call finished."""
        key = (operation, outcome)
        tally = self._storage.get(key)
        if tally is None:
            tally = self._storage[key] = _Tally([0] * len(self._storage_bounds))
            tally.children = (
                self.storage_ops.labels(operation, outcome),
                self.storage_seconds.labels(operation),
                None,
                None,
            )
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(self._storage_bounds, seconds)] += 1
        self._due()

    def _due(self) -> None:
        """Schedule a flush (one pending at a time); without an event loop, flush now."""
        if self._flush_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_due = True
        loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand the tallies to prometheus-client (into the multiprocess files under serve)."""
        self._flush_due = False
        for tallies in (self._requests, self._storage):
            for tally in tallies.values():
                if not tally.count or tally.children is None:
                    continue
                count, histogram, received, sent = tally.children
                count.inc(tally.count)
                _add_observations(histogram, tally.seconds, tally.buckets)
                if received is not None and tally.received:
                    received.inc(tally.received)
                if sent is not None and tally.sent:
                    sent.inc(tally.sent)
                tally.count, tally.seconds, tally.received, tally.sent = 0, 0.0, 0, 0
                tally.buckets = [0] * len(tally.buckets)


def _add_observations(histogram: Histogram, seconds: float, buckets: list[int]) -> None:
    """Many observations into one histogram child at once. prometheus-client has no public call
    for it; its child keeps ``_sum`` and per-bucket ``_buckets`` values (non-cumulative, the
    layout ``observe`` writes and the exposition sums), which this adds to directly. The tests
    read the exposed ``_bucket``, ``_count`` and ``_sum`` series back, so a change of that layout
    fails them."""
    histogram._sum.inc(seconds)
    for index, count in enumerate(buckets):
        if count:
            histogram._buckets[index].inc(count)
