"""The events the metrics count: finished collections, refused and throttled logins."""

from __future__ import annotations

from dockyard.events import CollectionFinished, Event, LoginFailed
from dockyard.metrics.collectors import Metrics


class MetricsSubscriber:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def emit(self, event: Event) -> None:
        if isinstance(event, CollectionFinished):
            self.metrics.gc_runs.labels("true" if event.dry_run else "false").inc()
            if not event.dry_run:
                self.metrics.gc_freed.inc(event.bytes_freed)
                self.metrics.gc_blobs.inc(event.blobs_deleted)
        elif isinstance(event, LoginFailed):
            (self.metrics.login_throttled if event.throttled else self.metrics.login_failures).inc()
