"""PostgreSQL for the listing index's tests, started once per session as a plain process."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
