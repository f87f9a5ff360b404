"""PostgreSQL for the listing index's tests, started once per session as a plain process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.testing.postgres import PostgresServer, find_bin


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dsn(postgres: PostgresServer) -> str:
    return postgres.create_database()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
