"""Every driver runs the shared conformance suite; driver-specific behaviour is tested here."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dockyard.storage.driver import StorageDriver
from dockyard.storage.drivers import DRIVERS, create_driver
from dockyard.storage.drivers.checked import CheckedDriver, checked
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.testing.driver_suite import DriverSuite


class TestMemoryDriver(DriverSuite):
    @pytest.fixture
    def driver(self) -> MemoryDriver:
        return MemoryDriver()

    async def age(self, driver: StorageDriver, path: str, seconds: float) -> None:
        assert isinstance(driver, MemoryDriver)
        data, mtime = driver.files[path]
        driver.files[path] = (data, mtime - seconds)


class TestFilesystemDriver(DriverSuite):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> FilesystemDriver:
        return FilesystemDriver(str(tmp_path / "root"), fsync=True)

    async def leftovers(self, store: CheckedDriver) -> list[str]:
        """Every file on disk, temporaries (which listings hide) included."""
        assert isinstance(store.inner, FilesystemDriver)
        root = store.inner.root
        found = (os.path.join(d, n) for d, _, files in os.walk(root) for n in files)
        return sorted(os.path.relpath(f, root) for f in found)

    async def age(self, driver: StorageDriver, path: str, seconds: float) -> None:
        local = driver.local_path(path)
        assert local is not None
        st = os.stat(local)
        os.utime(local, (st.st_atime - seconds, st.st_mtime - seconds))


class TestFilesystemDriverAllThreaded(TestFilesystemDriver):
    """The shared suite again with ``inlinemetadata: false`` (the class above has it on)."""

    @pytest.fixture
    def driver(self, tmp_path: Path) -> FilesystemDriver:
        return FilesystemDriver(str(tmp_path / "root"), fsync=True, inline_metadata=False)


@pytest.mark.anyio
async def test_filesystem_leaves_no_temporary_files(tmp_path: Path) -> None:
    driver = checked(FilesystemDriver(str(tmp_path), fsync=False))
    for i in range(20):
        await driver.put_content("/t/link", b"%d" % i)
        await driver.put_if_absent("/t/once", b"x")
        await driver.copy("/t/link", "/t/copy")
    await driver.delete("/t/once")
    leftovers = [n for _, dirs, files in os.walk(tmp_path) for n in dirs + files if ".tmp-" in n]
    assert leftovers == []


@pytest.mark.anyio
async def test_filesystem_cleanup_removes_temporaries_of_interrupted_writes(tmp_path: Path) -> None:
    """A delete killed half way leaves a ``.tmp-`` directory, a write a ``.tmp-`` file; cleanup
    removes the directory at once and the file only once it is older than the cutoff."""
    driver = checked(FilesystemDriver(str(tmp_path), fsync=False))
    (tmp_path / "t/blobs/ab.tmp-123").mkdir(parents=True)
    (tmp_path / "t/blobs/ab.tmp-123/data").write_bytes(b"left by a killed delete")
    (tmp_path / "t/link.tmp-456").write_bytes(b"left by a killed write")
    await driver.put_content("/t/keep/data", b"real")
    assert await driver.list_dir("/t") == ["blobs", "keep"]  # listings never show them
    assert await driver.cleanup(time.time() - 3600) == 1
    assert (tmp_path / "t/link.tmp-456").exists()
    assert await driver.cleanup(time.time() + 10) == 1
    assert not (tmp_path / "t/link.tmp-456").exists() and not (tmp_path / "t/blobs/ab.tmp-123").exists()
    assert await driver.get_content("/t/keep/data") == b"real"


@pytest.mark.anyio
async def test_filesystem_driver_errors_are_normalised(tmp_path: Path) -> None:
    """A failure the driver does not translate carries the driver, operation and path."""
    driver = checked(FilesystemDriver(str(tmp_path), fsync=False))
    await driver.put_content("/f/file", b"x")
    with pytest.raises(OSError) as caught:
        await driver.put_content("/f/file/below", b"y")  # a file where a directory must be
    assert "storage driver filesystem: put /f/file/below" in getattr(caught.value, "__notes__", [])


def test_drivers_are_found_by_name(tmp_path: Path) -> None:
    assert isinstance(create_driver("inmemory", {}).inner, MemoryDriver)
    fs = create_driver("filesystem", {"rootdirectory": str(tmp_path), "maxthreads": 500})
    assert isinstance(fs.inner, FilesystemDriver) and fs.inner.root == str(tmp_path)
    with pytest.raises(
        ValueError, match="unknown storage driver 's4' \\(available: filesystem, inmemory, s3\\)"
    ):
        create_driver("s4", {})


def test_a_driver_that_cannot_load_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = DRIVERS["inmemory"]._replace(
        target="dockyard.storage.drivers.absent:Nope", install="pip install x"
    )
    monkeypatch.setitem(DRIVERS, "broken", entry)
    with pytest.raises(
        ValueError, match=r"storage driver 'broken' cannot be loaded .*install it with: pip install x"
    ):
        create_driver("broken", {})


def test_config_knows_the_same_driver_names() -> None:
    from dockyard.config import DRIVER_NAMES

    assert sorted(DRIVER_NAMES) == sorted(DRIVERS)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
