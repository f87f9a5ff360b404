"""A Docker Hub-compatible listing API (``/v2/repositories/…``, ``/v2/namespaces/…``) over the store."""
