"""Every driver runs the shared conformance suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.testing.driver_suite import DriverSuite


class TestMemoryDriver(DriverSuite):
    @pytest.fixture
    def driver(self) -> MemoryDriver:
        return MemoryDriver()


class TestFilesystemDriver(DriverSuite):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> FilesystemDriver:
        return FilesystemDriver(str(tmp_path / "root"), fsync=True)


@pytest.mark.anyio
async def test_filesystem_leaves_no_temporary_files(tmp_path: Path) -> None:
    driver = FilesystemDriver(str(tmp_path), fsync=False)
    for i in range(20):
        await driver.put_content("/t/link", b"%d" % i)
        await driver.put_if_absent("/t/once", b"x")
    await driver.delete("/t/once")
    leftovers = [n for _, _, files in os.walk(tmp_path) for n in files if ".tmp-" in n]
    assert leftovers == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
