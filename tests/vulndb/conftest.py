"""The advisory store under test: SQLite (one machine) and PostgreSQL (the coordinator's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.vulndb.store import SqliteVulnStore, VulnStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VulnStore]:
    if request.param == "sqlite":
        sqlite = SqliteVulnStore(tmp_path / "vulndb.sqlite")
        yield sqlite
        await sqlite.close()
        return
    from dockyard.coord.postgres import PostgresCoordinator
    from dockyard.vulndb.pg import PgVulnStore

    pg = PostgresCoordinator(request.getfixturevalue("dsn"))
    yield PgVulnStore(pg)
    await pg.close()
