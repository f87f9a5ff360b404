"""The in-process client fixtures of tests/api, for the Hub-compatible API."""

from tests.api.conftest import anyio_backend, client, make_client, storage_section

__all__ = ["anyio_backend", "client", "make_client", "storage_section"]
