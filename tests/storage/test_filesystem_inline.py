"""The filesystem driver's metadata on the event loop (#16's relaxed rule): ``stat`` and reads of
up to 4 KiB run inline, anything larger or longer goes to the worker threads, and
``inlinemetadata: false`` sends everything there (``test_fstype``: what ``auto`` decides;
``test_drivers``: the shared suite with everything in threads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import PathNotFound
from dockyard.storage.drivers import create_driver
from dockyard.storage.drivers.filesystem import INLINE_BATCH, INLINE_READ, FilesystemDriver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the driver's threads hand results to an asyncio loop


class _Counted(FilesystemDriver):
    """Counts the calls that went to the worker threads."""

    threaded: list[str]

    async def run(self, fn: Any, *args: Any) -> Any:
        self.threaded.append(fn.__name__)
        return await super().run(fn, *args)


def _driver(root: Path, inline: bool = True) -> _Counted:
    driver = _Counted(str(root), fsync=False, inline_metadata=inline)
    driver.threaded = []
    return driver


def _write(root: Path, rel: str, data: bytes) -> None:
    os.makedirs(root / os.path.dirname(rel), exist_ok=True)
    (root / rel).write_bytes(data)


async def test_link_files_and_stats_stay_on_the_loop(tmp_path: Path) -> None:
    driver = _driver(tmp_path)
    _write(tmp_path, "r/link", b"sha256:" + b"a" * 64)
    _write(tmp_path, "r/edge", b"e" * INLINE_READ)
    assert await driver.get_content("/r/link") == b"sha256:" + b"a" * 64
    assert await driver.get_content("/r/edge") == b"e" * INLINE_READ
    info = await driver.stat("/r/edge")
    assert info.size == INLINE_READ and not info.is_dir
    assert (await driver.stat("/r")).is_dir
    assert await driver.stat_many(["/r/link", "/r/none"]) == [await driver.stat("/r/link"), None]
    assert await driver.get_many(["/r/none", "/r/link"]) == [None, b"sha256:" + b"a" * 64]
    with pytest.raises(PathNotFound):
        await driver.get_content("/r/none")
    with pytest.raises(PathNotFound):
        await driver.stat("/r/none")
    assert driver.threaded == []


async def test_larger_files_and_long_batches_go_to_the_threads(tmp_path: Path) -> None:
    driver = _driver(tmp_path)
    big = bytes(range(256)) * (INLINE_READ // 256) + b"!"  # one byte over
    _write(tmp_path, "r/big", big)
    _write(tmp_path, "r/small", b"s")
    assert await driver.get_content("/r/big") == big
    assert driver.threaded == ["_get"]
    assert await driver.get_many(["/r/small", "/r/big", "/r/gone"]) == [b"s", big, None]
    assert driver.threaded == ["_get", "_get"]
    many = ["/r/small"] * (INLINE_BATCH + 1)
    assert len(await driver.stat_many(many)) == INLINE_BATCH + 1
    assert await driver.get_many(many) == [b"s"] * (INLINE_BATCH + 1)
    assert driver.threaded == ["_get", "_get", "each_or_none", "each_or_none"]


async def test_a_directory_read_fails_as_before(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for inline in (True, False):
        with pytest.raises(IsADirectoryError):
            await _driver(tmp_path, inline).get_content("/d")


async def test_inlinemetadata_false_sends_every_call_to_the_threads(tmp_path: Path) -> None:
    checked = create_driver("filesystem", {"rootdirectory": str(tmp_path), "inlinemetadata": False})
    assert isinstance(checked.inner, FilesystemDriver) and not checked.inner.inline_metadata
    driver = _driver(tmp_path, inline=False)
    _write(tmp_path, "r/link", b"x")
    await driver.get_content("/r/link")
    await driver.stat("/r/link")
    await driver.stat_many(["/r/link"])
    await driver.get_many(["/r/link"])
    assert driver.threaded == ["_get", "_stat", "each_or_none", "each_or_none"]


@pytest.mark.parametrize("inline", [True, False])
def test_the_local_coordinator_follows_the_drivers_decision(tmp_path: Path, inline: bool) -> None:
    """Its files are under the same root (``create_app`` passes the driver's decision on)."""
    from dockyard.app import create_services
    from dockyard.config import parse_config

    tree = {"storage": {"filesystem": {"rootdirectory": str(tmp_path), "inlinemetadata": inline}}}
    coordinator = create_services(parse_config(tree)).coordinator
    assert coordinator.name == "local"
    assert coordinator.inline is inline  # type: ignore[attr-defined]


@pytest.mark.parametrize("inline", [True, False])
def test_pull_through_fills_follow_it_too(tmp_path: Path, inline: bool) -> None:
    """On a network filesystem a fill keeps its spool copy rather than ``stat`` the upload's file
    on the loop."""
    from dockyard.app import create_services
    from dockyard.config import parse_config

    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root"), "inlinemetadata": inline}},
        "proxy": {"remoteurl": "http://up.test", "spooldirectory": str(tmp_path / "spool")},
    }
    fills = create_services(parse_config(tree)).model.fills  # type: ignore[attr-defined]
    assert fills.upload_files is inline
