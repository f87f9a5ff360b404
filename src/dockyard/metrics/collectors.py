"""The metrics a worker keeps, and the hooks that feed them.

Names follow Prometheus conventions: ``dockyard_<what>_total`` for counters, ``_seconds`` and
``_bytes`` for units. Label values come from closed sets (route names from the route table,
methods, statuses, storage operation names), so no client can grow the number of series. The
labelled children are cached per label tuple: ``labels()`` takes a lock and builds a key on
every call, and a small request records several of them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Request latency: a cached manifest answers in well under a millisecond, a large blob takes
# minutes; the histogram has to tell both apart.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter, Counter]] = {}
        self._storage_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def request(self, route: str, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        label = method if method in _METHODS else "other"
        key = (route, label, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, label, str(status)),
                self.request_seconds.labels(route, label),
                self.received_bytes.labels(route),
                self.sent_bytes.labels(route),
            )
            self._request_children[key] = children
        count, latency, received_bytes, sent_bytes = children
        count.inc()
        latency.observe(seconds)
        if received:
            received_bytes.inc(received)
        if sent:
            sent_bytes.inc(sent)

    def storage_operation(self, operation: str, seconds: float, outcome: str) -> None:
        """``storage.drivers.checked.StorageObserver``: one driver call finished."""
        key = (operation, outcome)
        children = self._storage_children.get(key)
        if children is None:
            children = (self.storage_ops.labels(operation, outcome), self.storage_seconds.labels(operation))
            self._storage_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
