"""A PostgreSQL server for the coordinator tests, started once per session as a plain process."""

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
    print(f"\nPostgreSQL started in {server.started_in:.2f} s")
    try:
        yield server
    finally:
        server.stop()
