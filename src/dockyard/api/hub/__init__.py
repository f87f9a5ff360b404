"""A Docker Hub-compatible listing API (``/v2/repositories/…``, ``/v2/namespaces/…``) over the store.

The HTTP surface only (handlers, parameters, JSON shapes, errors, OpenAPI); the listings themselves
come from ``dockyard.browse``, which the web UI uses too."""
