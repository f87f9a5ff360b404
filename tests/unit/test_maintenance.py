"""The maintenance scheduler: one process runs each job, by the coordinator's lease and clock."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.config import parse_config
from dockyard.coord.memory import MemoryCoordinator
from dockyard.maintenance import LEASE_SECONDS, Job, Scheduler, jobs_from_config
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.registry import Registry
from dockyard.testing.coord_suite import ManualClock

pytestmark = pytest.mark.anyio
HOUR = 3600.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def coordinator(clock: ManualClock) -> MemoryCoordinator:
    return MemoryCoordinator(clock)


def recording(ran: list[str], who: str, name: str = "gc") -> Job:
    async def run() -> None:
        ran.append(who)

    return Job(name, HOUR, 0.0, run)


async def two(coordinator: MemoryCoordinator, ran: list[str]) -> tuple[Scheduler, Job, Scheduler, Job]:
    a_job, b_job = recording(ran, "a"), recording(ran, "b")
    a = Scheduler(coordinator, [a_job], holder="a")
    b = Scheduler(coordinator, [b_job], holder="b")
    await a.schedule()
    await b.schedule()
    return a, a_job, b, b_job


async def test_one_of_two_processes_runs_a_due_job(coordinator: MemoryCoordinator) -> None:
    ran: list[str] = []
    a, a_job, b, b_job = await two(coordinator, ran)
    results = await asyncio.gather(a.step(a_job), b.step(b_job), a.step(a_job), b.step(b_job))
    assert sum(results) == 1 and len(ran) == 1


async def test_the_leader_runs_again_only_when_due(
    coordinator: MemoryCoordinator, clock: ManualClock
) -> None:
    ran: list[str] = []
    a, a_job, b, b_job = await two(coordinator, ran)
    assert await a.step(a_job)
    for _ in range(int(HOUR // (LEASE_SECONDS / 3)) - 1):  # the leader looks every 20 s
        clock.advance(LEASE_SECONDS / 3)
        assert not await a.step(a_job)
        assert not await b.step(b_job)
    clock.advance(LEASE_SECONDS / 3)
    assert await a.step(a_job)
    assert ran == ["a", "a"]


async def test_another_process_takes_over_when_the_leader_stops(
    coordinator: MemoryCoordinator, clock: ManualClock
) -> None:
    ran: list[str] = []
    a, a_job, b, b_job = await two(coordinator, ran)
    assert await a.step(a_job)
    clock.advance(LEASE_SECONDS - 1)
    assert not await b.step(b_job)  # the lease has a second to go
    clock.advance(2)  # "a" stopped renewing: its lease expired
    assert await b.step(b_job)
    assert not await a.step(a_job)  # "a" is back, but "b" leads now
    assert ran == ["a", "b"]


async def test_a_long_run_keeps_its_lease(coordinator: MemoryCoordinator, clock: ManualClock) -> None:
    async def sleep(seconds: float) -> None:  # time passes only when someone waits
        clock.advance(seconds)
        await asyncio.sleep(0)

    outcome: list[bool] = []
    b_job = Job("gc", HOUR, 0.0, lambda: asyncio.sleep(0))
    b = Scheduler(coordinator, [b_job], holder="b", sleep=sleep)

    async def long_run() -> None:
        end = clock.value + 10 * LEASE_SECONDS
        while clock.value < end:  # the renewer's sleeps move the clock on
            await asyncio.sleep(0)
        outcome.append(await b.step(b_job))  # another process looks, mid-run

    a_job = Job("gc", HOUR, 0.0, long_run)
    a = Scheduler(coordinator, [a_job], holder="a", sleep=sleep)
    await a.schedule()
    await b.schedule()
    assert await a.step(a_job)
    assert outcome == [False]
    assert await coordinator.lease_holder("gc") == "a"


async def test_a_failing_job_is_logged_and_rescheduled(
    coordinator: MemoryCoordinator, clock: ManualClock
) -> None:
    async def fail() -> None:
        raise RuntimeError("disk on fire")

    job = Job("gc", HOUR, 0.0, fail)
    scheduler = Scheduler(coordinator, [job], holder="a")
    await scheduler.schedule()
    assert await scheduler.step(job)
    clock.advance(HOUR - 1)
    assert not await scheduler.step(job)


async def test_stop_gives_the_leases_up(coordinator: MemoryCoordinator) -> None:
    ran: list[str] = []
    forever = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await forever.wait()

    scheduler = Scheduler(
        coordinator, [recording(ran, "a"), recording(ran, "a", "retention")], holder="a", sleep=sleep
    )
    await scheduler.start()
    while len(ran) < 2:
        await asyncio.sleep(0)
    assert await coordinator.lease_holder("gc") == "a"
    await scheduler.stop()
    assert await coordinator.lease_holder("gc") is None
    assert await coordinator.lease_holder("retention") is None


def test_jobs_follow_the_configuration() -> None:
    coordinator = MemoryCoordinator()
    registry = Registry(MemoryDriver(), coordinator=coordinator)

    def names(tree: dict[str, object]) -> list[str]:
        config = parse_config({"storage": {"inmemory": {}, **tree}})
        return [job.name for job in jobs_from_config(config, registry, coordinator)]

    assert names({}) == ["upload-purge", "gc"]
    assert names({"maintenance": {"readonly": {"enabled": True}}}) == []
    assert names({"maintenance": {"gc": {"enabled": False}, "uploadpurging": {"enabled": False}}}) == []
    config = parse_config(
        {
            "storage": {"inmemory": {}},
            "retention": {"interval": "1h", "policies": [{"repositories": "**", "keep": 3}]},
        }
    )
    jobs = jobs_from_config(config, registry, coordinator)
    assert [job.name for job in jobs] == ["upload-purge", "gc", "retention"]
    assert all(0 <= job.first_delay <= job.interval for job in jobs)


async def test_a_follower_past_its_due_time_waits_instead_of_spinning(
    coordinator: MemoryCoordinator, clock: ManualClock
) -> None:
    """The leader runs the job; the other process's own due time has passed, but it must still
    sleep between looks (it looped with zero waits, a third of a core per idle worker)."""
    ran: list[str] = []
    a, a_job, _, b_job = await two(coordinator, ran)
    assert await a.step(a_job)
    waits: list[float] = []

    class Enough(Exception):
        pass

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 5:
            raise Enough
        clock.advance(seconds)
        assert await a.step(a_job) is False  # the leader keeps its lease (not due for an hour)

    b = Scheduler(coordinator, [b_job], holder="b", sleep=sleep)
    await b.schedule()
    with pytest.raises(Enough):
        await b._loop(b_job)
    assert ran == ["a"]
    assert waits == [LEASE_SECONDS / 3] * 5
