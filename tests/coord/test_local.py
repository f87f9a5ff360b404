"""The local coordinator passes the shared suite, across instances and across processes."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockyard.coord.local import LocalCoordinator
from dockyard.errors import LockBusy
from dockyard.testing.coord_suite import CoordinatorSuite, ManualClock


class TestLocalCoordinator(CoordinatorSuite):
    @pytest.fixture
    def coordinator(self, tmp_path: Path, clock: ManualClock) -> LocalCoordinator:
        return LocalCoordinator(str(tmp_path / "_dockyard"), clock)

    @pytest.fixture
    def peer(self, tmp_path: Path, clock: ManualClock) -> LocalCoordinator:
        return LocalCoordinator(str(tmp_path / "_dockyard"), clock)


class TestLocalCoordinatorAllThreaded(TestLocalCoordinator):
    """The same suite with nothing on the loop (a store root on a network filesystem)."""

    @pytest.fixture
    def coordinator(self, tmp_path: Path, clock: ManualClock) -> LocalCoordinator:
        return LocalCoordinator(str(tmp_path / "_dockyard"), clock, inline=False)

    @pytest.fixture
    def peer(self, tmp_path: Path, clock: ManualClock) -> LocalCoordinator:
        return LocalCoordinator(str(tmp_path / "_dockyard"), clock, inline=False)


class _Counted(LocalCoordinator):
    """Counts the calls that went to the coordinator's threads."""

    threaded: list[str]

    async def _run(self, fn: object, *args: object) -> object:
        self.threaded.append(getattr(fn, "__name__", repr(fn)))
        return await super()._run(fn, *args)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("inline", [True, False])
async def test_small_calls_stay_on_the_loop_unless_told_not_to(tmp_path: Path, inline: bool) -> None:
    coord = _Counted(str(tmp_path), inline=inline)
    coord.threaded = []
    for _ in range(2):  # the second time: the generation file and the shared lock's file exist
        coord.threaded.clear()
        await coord.create_session("s1", "library/a")
        await coord.update_session("s1", offset=3)
        assert (await coord.get_session("s1")) is not None
        await coord.delete_session("s1")
        await coord.referenced(["k"])
        await coord.last_referenced(["k"])
        await coord.forget(["k"])
        await coord.bump("topic")
        await coord.generation("topic")
        async with coord.lock("upload-x", wait=False):
            pass
        async with coord.lock("gc", shared=True):
            pass
    await coord.close()
    if inline:  # nothing that can wait on another process: all on the loop
        assert coord.threaded == []
    else:
        assert len(coord.threaded) >= 12  # every one, some in more than one call
        assert {"_write_session", "_read_session", "_delete_session", "_referenced", "_exclusive"} <= set(
            coord.threaded
        )


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from dockyard.coord.local import LocalCoordinator

    async def main() -> None:
        coord = LocalCoordinator(sys.argv[1])
        async with coord.lock("gc", shared=sys.argv[2] == "shared"):
            print("held", flush=True)
            sys.stdin.readline()

    asyncio.run(main())
    """
)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["exclusive", "shared"])
async def test_a_lock_held_by_another_process(tmp_path: Path, mode: str) -> None:
    directory = str(tmp_path / "_dockyard")
    # As a context manager Popen also closes its pipes (filterwarnings = error fails on the
    # ResourceWarning of an unclosed one).
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, directory, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            coord = LocalCoordinator(directory)
            with pytest.raises(LockBusy):
                async with coord.lock("gc", wait=False):
                    pass
            if mode == "shared":
                async with coord.lock("gc", shared=True, wait=False):
                    pass
            assert holder.stdin is not None
            holder.stdin.close()
            assert holder.wait(30) == 0
            async with coord.lock("gc", wait=False):
                pass
        finally:
            holder.kill()


@pytest.mark.anyio
async def test_exclusive_locks_leave_no_files(tmp_path: Path) -> None:
    coord = LocalCoordinator(str(tmp_path))
    for i in range(20):
        async with coord.lock(f"upload-{i}", wait=False):
            pass
        async with coord.lock(f"waited-{i}"):
            pass
    assert os.listdir(tmp_path / "locks") == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_shared_waiters_of_one_process_survive_the_lock_file_being_removed(tmp_path: Path) -> None:
    """Two readers of one process wait for the shared flock behind a writer of another instance;
    the writer removes the lock file as it lets go, so the file the readers waited on is stale:
    both must start over on the new file (neither may use a file the other closed)."""
    readers, writer = LocalCoordinator(str(tmp_path)), LocalCoordinator(str(tmp_path))
    async with readers.lock("gc", shared=True):  # the readers' process opens its shared file
        pass
    entered: list[int] = []

    async def reader(i: int) -> None:
        async with readers.lock("gc", shared=True):
            entered.append(i)

    async with writer.lock("gc"):
        waiting = [asyncio.ensure_future(reader(i)) for i in range(2)]
        for _ in range(50):  # both readers are now waiting for the writer
            await asyncio.sleep(0.001)
        assert entered == []
    await asyncio.wait_for(asyncio.gather(*waiting), 30)
    assert sorted(entered) == [0, 1]
    async with writer.lock("gc", wait=False):  # and the readers let go of the new file
        pass
    await readers.close()
    await writer.close()


@pytest.mark.anyio
async def test_a_generation_another_process_has_locked_is_waited_for_in_a_thread(tmp_path: Path) -> None:
    """Bumps and reads try the counter's flock on the event loop; held by someone else (here an
    open file of our own, which flock treats as another holder), they wait for it in a thread."""
    coord = LocalCoordinator(str(tmp_path))
    assert await coord.generation("t") == 0
    assert await coord.bump("t") == 1
    fd = os.open(tmp_path / "generations" / "t", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        bump = asyncio.ensure_future(coord.bump("t"))
        read = asyncio.ensure_future(coord.generation("t"))
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert not bump.done() and not read.done()
    finally:
        os.close(fd)
    assert await asyncio.wait_for(bump, 30) == 2
    assert await asyncio.wait_for(read, 30) in (1, 2)
    assert await coord.generation("t") == 2
    await coord.close()
