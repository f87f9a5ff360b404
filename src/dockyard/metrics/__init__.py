"""Prometheus metrics: what each worker counts, and how the serving parent serves them all.

Workers count into :class:`~dockyard.metrics.collectors.Metrics` (built by ``create_services``
when ``http.debug.prometheus.enabled``); under ``dockyard serve`` prometheus-client's
multiprocess mode keeps every worker's values in files of one directory that the serving parent
creates, and the parent's debug listener (``dockyard.metrics.exposition``) sums them per scrape,
so a scrape sees the whole server whichever worker would have answered it.
"""
