"""Shared fixtures. Folders decide markers: clients/ and interop/ drive real programs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveRegistry

_FOLDER_MARKERS = {"clients": ("clients", "live"), "interop": ("interop", "live"), "live": ("live",)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        folder = parts[parts.index("tests") + 1] if "tests" in parts else ""
        for marker in _FOLDER_MARKERS.get(folder, ()):
            item.add_marker(marker)


@pytest.fixture
def live_registry(tmp_path: Path) -> Iterator[LiveRegistry]:
    """A fresh ``dockyard serve`` (2 workers) on its own port and storage root."""
    with LiveRegistry(tmp_path / "registry") as registry:
        yield registry
