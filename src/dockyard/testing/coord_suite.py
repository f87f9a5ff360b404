"""The conformance suite every coordinator must pass.

A test module subclasses :class:`CoordinatorSuite` and provides two fixtures built on the
suite's ``clock``: ``coordinator``, and ``peer``, a second coordinator on the same shared state
as another process (or replica) would see it (a single-process implementation returns the same
object: its locks then exclude tasks, which the suite checks too)::

    class TestMyCoordinator(CoordinatorSuite):
        @pytest.fixture
        def coordinator(self, clock): return MyCoordinator(..., clock=clock)
        @pytest.fixture
        def peer(self, clock): return MyCoordinator(..., clock=clock)

Tests run under anyio (asyncio backend). Nothing here waits on time: expiry is driven by the
injected clock, and "still waiting" is checked after the waiter has had every chance to run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dockyard.coord.base import Coordinator, Part
from dockyard.errors import InvalidPath, LockBusy


class ManualClock:
    """A clock tests step by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


async def _settle(rounds: int = 50) -> None:
    """Give other tasks, threads and the database every chance to make progress."""
    for _ in range(rounds):
        await asyncio.sleep(0.001)


@pytest.mark.anyio
class CoordinatorSuite:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def pair(
        self, coordinator: Coordinator, peer: Coordinator
    ) -> AsyncIterator[tuple[Coordinator, Coordinator]]:
        yield coordinator, peer
        await coordinator.close()
        if peer is not coordinator:
            await peer.close()

    # -- clock ---------------------------------------------------------------------------------

    async def test_now_is_the_injected_clock(
        self, pair: tuple[Coordinator, Coordinator], clock: ManualClock
    ) -> None:
        a, b = pair
        assert await a.now() == clock.value
        clock.advance(12.5)
        assert await b.now() == clock.value

    # -- locks ---------------------------------------------------------------------------------

    async def test_exclusive_lock_excludes_everyone(self, pair: tuple[Coordinator, Coordinator]) -> None:
        a, b = pair
        async with a.lock("gc"):
            for who in (a, b):
                with pytest.raises(LockBusy):
                    async with who.lock("gc", wait=False):
                        pytest.fail("two exclusive holders")
                with pytest.raises(LockBusy):
                    async with who.lock("gc", shared=True, wait=False):
                        pytest.fail("a shared holder beside an exclusive one")
            async with b.lock("other", wait=False):  # names are independent
                pass
        async with b.lock("gc", wait=False):  # released
            pass

    async def test_shared_holders_share_and_keep_writers_out(
        self, pair: tuple[Coordinator, Coordinator]
    ) -> None:
        a, b = pair
        async with (
            a.lock("gc", shared=True),
            a.lock("gc", shared=True),
            b.lock("gc", shared=True, wait=False),
        ):
            for who in (a, b):
                with pytest.raises(LockBusy):
                    async with who.lock("gc", wait=False):
                        pytest.fail("an exclusive holder beside shared ones")
        async with a.lock("gc", wait=False):  # every shared holder let go
            pass

    async def test_waiting_writer_gets_the_lock_when_released(
        self, pair: tuple[Coordinator, Coordinator]
    ) -> None:
        a, b = pair
        acquired = asyncio.Event()

        async def waiter() -> None:
            async with b.lock("gc"):
                acquired.set()

        async with a.lock("gc", shared=True):
            task = asyncio.ensure_future(waiter())
            await _settle()
            assert not acquired.is_set(), "an exclusive lock was granted beside a shared holder"
        await asyncio.wait_for(task, 30)
        assert acquired.is_set()

    async def test_exclusive_sections_never_overlap(self, pair: tuple[Coordinator, Coordinator]) -> None:
        a, b = pair
        inside = 0
        overlaps = 0
        entered = 0

        async def worker(who: Coordinator) -> None:
            nonlocal inside, overlaps, entered
            for _ in range(5):
                async with who.lock("counter"):
                    inside += 1
                    entered += 1
                    overlaps += inside > 1
                    await asyncio.sleep(0)
                    await asyncio.sleep(0.001)
                    inside -= 1

        await asyncio.wait_for(asyncio.gather(*(worker(w) for w in (a, b, a, b))), 60)
        assert entered == 20 and overlaps == 0

    async def test_a_cancelled_waiter_leaves_the_lock_usable(
        self, pair: tuple[Coordinator, Coordinator]
    ) -> None:
        a, b = pair
        async with a.lock("gc"):
            task = asyncio.ensure_future(a.lock("gc").__aenter__())
            await _settle(5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        async with b.lock("gc", wait=False), b.lock("other", wait=False):
            pass
        async with a.lock("gc", wait=False):
            pass

    async def test_lock_names_are_checked(self, pair: tuple[Coordinator, Coordinator]) -> None:
        a, _ = pair
        for bad in ("", "../x", "UPPER", "a b", "x" * 101):
            with pytest.raises(InvalidPath):
                async with a.lock(bad):
                    pass

    # -- upload sessions -----------------------------------------------------------------------

    async def test_session_lifecycle(self, pair: tuple[Coordinator, Coordinator], clock: ManualClock) -> None:
        a, b = pair
        created = await a.create_session("u-1", "team/app")
        assert (created.id, created.repository, created.offset) == ("u-1", "team/app", 0)
        assert created.started_at == created.updated_at == clock.value
        assert await b.get_session("u-1") == created
        clock.advance(5)
        parts = [Part(1, '"etag-1"', 5 << 20), Part(2, '"etag-2"', 17)]
        updated = await b.update_session(
            "u-1", offset=(5 << 20) + 17, hash_state=bytes(range(112)), multipart_id="mp-9", parts=parts
        )
        assert updated is not None
        assert updated.offset == (5 << 20) + 17 and updated.hash_state == bytes(range(112))
        assert updated.multipart_id == "mp-9" and updated.parts == tuple(parts)
        assert updated.started_at == created.started_at and updated.updated_at == clock.value
        assert await a.get_session("u-1") == updated
        assert await a.delete_session("u-1")
        assert await b.get_session("u-1") is None
        assert not await b.delete_session("u-1")
        assert await a.update_session("u-1", offset=1) is None

    async def test_idle_sessions_follow_the_clock(
        self, pair: tuple[Coordinator, Coordinator], clock: ManualClock
    ) -> None:
        a, b = pair
        await a.create_session("old", "r")
        clock.advance(100)
        await b.create_session("new", "r")
        assert [s.id for s in await a.idle_sessions(50)] == ["old"]
        await b.update_session("old", offset=3)  # activity makes it fresh again
        assert await a.idle_sessions(50) == []
        clock.advance(60)
        assert sorted(s.id for s in await b.idle_sessions(50)) == ["new", "old"]

    # -- liveness ------------------------------------------------------------------------------

    async def test_references_record_the_coordinators_time(
        self, pair: tuple[Coordinator, Coordinator], clock: ManualClock
    ) -> None:
        a, b = pair
        t0 = clock.value
        await a.referenced(["sha256:aa", "team/app@sha256:bb"])
        assert await b.last_referenced(["sha256:aa", "team/app@sha256:bb", "sha256:cc"]) == [t0, t0, None]
        clock.advance(30)
        await b.referenced(["sha256:aa"])
        assert await a.last_referenced(["sha256:aa", "team/app@sha256:bb"]) == [t0 + 30, t0]
        clock.advance(-20)  # a clock that stepped back never moves a record back
        await a.referenced(["sha256:aa"])
        assert await a.last_referenced(["sha256:aa"]) == [t0 + 30]
        await b.forget(["sha256:aa", "sha256:never"])
        assert await a.last_referenced(["sha256:aa", "team/app@sha256:bb"]) == [None, t0]
        await a.referenced([])
        assert await a.last_referenced([]) == []

    # -- generations ---------------------------------------------------------------------------

    async def test_generations_bump(self, pair: tuple[Coordinator, Coordinator]) -> None:
        a, b = pair
        assert await a.generation("tags.team-app") == 0
        assert await a.bump("tags.team-app") == 1
        assert await b.bump("tags.team-app") == 2
        assert await a.generation("tags.team-app") == 2
        assert await b.generation("catalog") == 0
        results = await asyncio.gather(*(w.bump("catalog") for w in (a, b) * 5))
        assert sorted(results) == list(range(1, 11))
        assert await a.generation("catalog") == 10

    # -- leases --------------------------------------------------------------------------------

    async def test_only_one_leader_until_the_lease_expires(
        self, pair: tuple[Coordinator, Coordinator], clock: ManualClock
    ) -> None:
        a, b = pair
        assert await a.lease_holder("gc") is None
        assert await a.acquire_lease("gc", "worker-a", 60)
        assert not await b.acquire_lease("gc", "worker-b", 60)
        assert await b.lease_holder("gc") == "worker-a"
        clock.advance(59)
        assert await a.acquire_lease("gc", "worker-a", 60)  # renewed: expires 60 s from now
        clock.advance(59)
        assert not await b.acquire_lease("gc", "worker-b", 60)
        clock.advance(2)  # worker-a stopped renewing: the lease expired
        assert await a.lease_holder("gc") is None
        assert await b.acquire_lease("gc", "worker-b", 60)
        assert not await a.acquire_lease("gc", "worker-a", 60)
        await a.release_lease("gc", "worker-a")  # not the holder: nothing happens
        assert await a.lease_holder("gc") == "worker-b"
        await b.release_lease("gc", "worker-b")
        assert await a.lease_holder("gc") is None
        assert await a.acquire_lease("gc", "worker-a", 60)

    async def test_contending_candidates_elect_one(self, pair: tuple[Coordinator, Coordinator]) -> None:
        a, b = pair
        results = await asyncio.gather(
            *(w.acquire_lease("retention", f"worker-{i}", 30) for i, w in enumerate((a, b) * 4))
        )
        assert sum(results) == 1
        winner = results.index(True)
        assert await b.lease_holder("retention") == f"worker-{winner}"
