"""The ``make`` fixture: apps with pull policies (``tests.scan.policyapp``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.scan.policyapp import policy_apps


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    async for factory in policy_apps(tmp_path):
        yield factory
