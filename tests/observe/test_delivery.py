"""The sender in one process: filters, the queue cap, backoff, one sender per store.

Real parts: the in-memory driver and coordinator, a real HTTP receiver on loopback; the clock is
injected, so backoff is checked by stepping it, not by waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from dockyard.config import parse_config
from dockyard.coord.memory import MemoryCoordinator
from dockyard.events import BlobPushed, ManifestPulled, ManifestPushed, TagDeleted
from dockyard.metrics.collectors import Metrics
from dockyard.notify.deliver import (
    BATCH,
    BODY,
    STEP,
    Deliverer,
    envelope,
    envelope_size,
    load_state,
    state_path,
)
from dockyard.notify.envelope import describe
from dockyard.notify.leader import ACTIVE_POLL_SECONDS, POLL_SECONDS
from dockyard.notify.spool import Record, Spool
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.drivers.memory import MemoryDriver
from tests.observe.receiver import Receiver
from tests.servers.dockyard import free_port

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
SOURCE = {"addr": "test:5000", "instanceID": "i"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Any:
    r = Receiver(free_port())
    yield r
    r.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def settings(port: int, **endpoint: Any) -> Any:
    hook = {
        "name": "hook",
        "url": f"http://127.0.0.1:{port}/",
        "backoff": "1s",
        "maxbackoff": "8s",
        **endpoint,
    }
    return parse_config({"notifications": {"endpoints": [hook]}}).notifications


async def queue(spool: Spool, *events: Any) -> None:
    for event in events:
        described = describe(event, None, SOURCE, "http://r")
        assert described is not None
        await spool.add(described["target"]["repository"], described)


def deliverer(
    spool: Spool, notifications: Any, clock: Clock, coordinator: Any = None, **kw: Any
) -> Deliverer:
    return Deliverer(spool, notifications, coordinator or MemoryCoordinator(), clock=clock, **kw)


async def run_until_idle(d: Deliverer) -> None:
    for _ in range(100):
        if not await d.step():
            return


async def test_ignored_actions_and_media_types_are_passed_over_in_order(receiver: Receiver) -> None:
    receiver.start()
    spool, clock = Spool(CheckedDriver(MemoryDriver())), Clock()
    notifications = settings(
        receiver.port, ignoredmediatypes=["application/octet-stream"], ignore={"actions": ["pull"]}
    )
    await queue(
        spool,
        BlobPushed("a", "sha256:" + "1" * 64, 3),
        ManifestPushed("a", "sha256:" + "2" * 64, OCI, "v1", 10),
        ManifestPulled("a", "sha256:" + "2" * 64, "v1", OCI, 10),
        TagDeleted("a", "v1"),
    )
    d = deliverer(spool, notifications, clock)
    await run_until_idle(d)
    await d.client.aclose()
    assert [(e["action"], e["target"].get("tag")) for e in receiver.events()] == [
        ("push", "v1"),
        ("delete", "v1"),
    ]
    assert await spool.files() == []  # every event handled: the spool is empty


async def test_a_full_queue_drops_the_oldest_counted(receiver: Receiver, caplog: Any) -> None:
    spool, clock, metrics = Spool(CheckedDriver(MemoryDriver())), Clock(), Metrics()
    notifications = parse_config(
        {
            "notifications": {
                "maxpending": 3,
                "endpoints": [{"name": "hook", "url": f"http://127.0.0.1:{receiver.port}/", "backoff": "1s"}],
            }
        }
    ).notifications
    # Queueing past the cap never waits: every event is durable at once (the cap is the sender's).
    await queue(spool, *(TagDeleted("a", f"t{i}") for i in range(5)))
    d = deliverer(spool, notifications, clock, metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="dockyard.notify"):
        await d.step()  # receiver down: two dropped, the attempt fails
    [line] = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert (getattr(line, "dropped", None), getattr(line, "maxpending", None)) == (2, 3)
    state = await load_state(spool.driver, "hook")
    assert (state.dropped, state.failures) == (2, 1)
    assert (
        metrics.registry.get_sample_value("dockyard_webhook_dropped_events_total", {"endpoint": "hook"}) == 2
    )
    assert metrics.registry.get_sample_value("dockyard_webhook_queue_depth", {"endpoint": "hook"}) == 5
    receiver.start()
    clock.now += 1
    await run_until_idle(d)
    await d.client.aclose()
    assert [e["target"]["tag"] for e in receiver.events()] == ["t2", "t3", "t4"]
    assert (
        metrics.registry.get_sample_value(
            "dockyard_webhook_deliveries_total", {"endpoint": "hook", "outcome": "failed"}
        )
        == 1
    )


async def test_backoff_doubles_up_to_its_cap_and_retries_from_the_same_event(receiver: Receiver) -> None:
    spool, clock = Spool(CheckedDriver(MemoryDriver())), Clock()
    await queue(spool, TagDeleted("a", "first"), TagDeleted("a", "second"))
    d = deliverer(spool, settings(receiver.port), clock)
    waits = []
    for _ in range(6):
        await d.step()
        state = await load_state(spool.driver, "hook")
        waits.append(state.retry_at - clock.now)
        assert not await d.step()  # not due yet: no attempt
        clock.now = state.retry_at
    assert waits == [1, 2, 4, 8, 8, 8]
    assert state.failures == 6 and state.last_error
    receiver.start()
    await run_until_idle(d)
    await d.client.aclose()
    assert [e["target"]["tag"] for e in receiver.events()] == ["first", "second"]
    state = await load_state(spool.driver, "hook")
    assert (state.failures, state.delivered) == (0, 2)


async def test_failures_halve_the_envelope_and_a_success_restores_it(receiver: Receiver) -> None:
    assert [envelope_size(f) for f in range(10)] == [BATCH >> f for f in range(8)] + [1, 1]
    receiver.refuse_over = BATCH // 4  # a receiver that cannot take full envelopes
    receiver.start()
    spool, clock = Spool(CheckedDriver(MemoryDriver())), Clock()
    total = BATCH + BATCH // 2
    await queue(spool, *(TagDeleted("a", f"t{i}") for i in range(total)))
    d = deliverer(spool, settings(receiver.port), clock)
    for _ in range(20):
        await d.step()
        clock.now = (await load_state(spool.driver, "hook")).retry_at
    await d.client.aclose()
    # Each step: a full envelope refused, half refused, a quarter taken, and after that success
    # a full envelope again; the last 32 fit in one.
    quarter, half = BATCH // 4, BATCH // 2
    assert receiver.refused == [BATCH, half] * 3 + [total - 3 * quarter, half, half, half]
    sizes = [len(json.loads(content)["events"]) for _, content in receiver.envelopes]
    assert sizes == [quarter] * 6
    assert [e["target"]["tag"] for e in receiver.events()] == [f"t{i}" for i in range(total)]
    state = await load_state(spool.driver, "hook")
    assert (state.failures, state.delivered) == (0, total)


def test_an_envelope_holds_at_most_body_bytes_of_events_and_at_least_one() -> None:
    def records(*sizes: int) -> list[Record]:
        return [Record((n, 0, 0), "a", "push", None, raw=b"x" * size) for n, size in enumerate(sizes)]

    third = BODY // 3
    assert len(envelope(records(third - 1, third - 1, third - 1, 1))) == 3  # each event and a comma
    assert len(envelope(records(third, third, third))) == 2
    assert len(envelope(records(BODY * 2, 1))) == 1  # larger than a body: alone
    assert envelope([]) == []


async def test_envelopes_of_large_events_are_cut_by_bytes(receiver: Receiver) -> None:
    receiver.start()
    spool, clock = Spool(CheckedDriver(MemoryDriver())), Clock()
    long_name = "team/" + "a" * 500  # about 700 bytes an event: 128 of them would be 90 KB
    await queue(spool, *(TagDeleted(long_name, f"t{i}") for i in range(300)))
    d = deliverer(spool, settings(receiver.port), clock)
    await run_until_idle(d)
    await d.client.aclose()
    bodies = [content for _, content in receiver.envelopes]
    assert all(len(body) <= BODY + len(b'{"events":[]}') for body in bodies)
    assert len(bodies) > 300 // BATCH + 1  # more envelopes than the count alone would make
    assert [e["target"]["tag"] for e in receiver.events()] == [f"t{i}" for i in range(300)]


async def test_one_sender_at_a_time(receiver: Receiver) -> None:
    receiver.start()
    driver, coordinator, clock = CheckedDriver(MemoryDriver()), MemoryCoordinator(), Clock()
    first = deliverer(Spool(driver), settings(receiver.port), clock, coordinator)
    second = deliverer(Spool(driver), settings(receiver.port), clock, coordinator)
    assert await first._lead()
    assert not await second._lead()
    await first.stop()  # gives the lease up
    assert await second._lead()
    await second.stop()


async def test_a_dead_senders_lease_is_taken_over_after_the_configured_time(receiver: Receiver) -> None:
    driver, clock = CheckedDriver(MemoryDriver()), Clock()
    coordinator = MemoryCoordinator(clock=clock)
    hook = {"name": "hook", "url": f"http://127.0.0.1:{receiver.port}/"}
    short = parse_config({"notifications": {"endpoints": [hook], "lease": "5s"}}).notifications
    first = deliverer(Spool(driver), short, clock, coordinator)
    second = deliverer(Spool(driver), short, clock, coordinator)
    assert await first._lead()  # then it dies without giving the lease up
    clock.now += 4.9
    assert not await second._lead()
    clock.now += 0.2
    assert await second._lead()
    for sender in (first, second):
        await sender.client.aclose()
    with pytest.raises(ValueError, match="at least 3s"):
        parse_config({"notifications": {"endpoints": [hook], "lease": "1s"}})


async def test_a_step_sends_envelope_after_envelope_and_writes_progress_once(receiver: Receiver) -> None:
    receiver.start()
    spool, clock = Spool(CheckedDriver(MemoryDriver())), Clock()
    await queue(spool, *(TagDeleted("a", f"t{i}") for i in range(STEP + 40)))
    d = deliverer(spool, settings(receiver.port), clock)
    writes: list[str] = []
    put = spool.driver.put_content

    async def counted(path: str, content: bytes) -> None:
        writes.append(path)
        await put(path, content)

    spool.driver.put_content = counted  # type: ignore[method-assign]
    assert await d.step() is True  # the step's share is sent; 40 wait for the next
    sizes = [len(json.loads(content)["events"]) for _, content in receiver.envelopes]
    assert sizes == [BATCH] * (STEP // BATCH)
    assert writes == [state_path("hook")]  # progress, once
    assert (await load_state(spool.driver, "hook")).delivered == STEP
    assert await d.step() is False
    await d.client.aclose()
    assert [e["target"]["tag"] for e in receiver.events()] == [f"t{i}" for i in range(STEP + 40)]
    assert await spool.files() == []


async def test_an_unreachable_endpoint_is_reported_in_words(receiver: Receiver) -> None:
    spool, clock = Spool(CheckedDriver(MemoryDriver())), Clock()
    await queue(spool, TagDeleted("a", "t"))
    d = deliverer(spool, settings(receiver.port, timeout="2s"), clock)
    assert await d.step() is False
    await d.client.aclose()
    state = await load_state(spool.driver, "hook")
    assert state.last_error is not None and state.last_error.startswith("cannot connect: ")
    assert str(receiver.port) in state.last_error


async def test_the_sender_looks_again_soon_after_a_step_with_events_and_seldom_when_idle(
    receiver: Receiver,
) -> None:
    receiver.start()
    spool, clock = Spool(CheckedDriver(MemoryDriver())), Clock()
    await queue(spool, TagDeleted("a", "t"))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            await queue(spool, TagDeleted("a", "u"))  # more arrives while it waits
        if len(waits) == 3:
            raise asyncio.CancelledError

    d = Deliverer(spool, settings(receiver.port), MemoryCoordinator(), clock=clock, sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await d._run()
    await d.client.aclose()
    assert waits == [ACTIVE_POLL_SECONDS, ACTIVE_POLL_SECONDS, POLL_SECONDS]
    assert [e["target"]["tag"] for e in receiver.events()] == ["t", "u"]


def described(event: Any) -> dict[str, Any]:
    out = describe(event, None, SOURCE, "http://r")
    assert out is not None
    return out


async def test_ignored_events_inside_one_file_are_passed_over_and_end_an_envelope(
    receiver: Receiver,
) -> None:
    receiver.start()
    spool, clock = Spool(CheckedDriver(MemoryDriver()), window=60.0), Clock()
    pulled = ManifestPulled("a", "sha256:" + "2" * 64, "v1", OCI, 10)
    for event in (
        ManifestPushed("a", "sha256:" + "2" * 64, OCI, "v1", 10),
        pulled,
        pulled,
        ManifestPushed("a", "sha256:" + "3" * 64, OCI, "v2", 10),
        pulled,
        TagDeleted("a", "v1"),
        pulled,
    ):
        spool.add("a", described(event), defer=True)
    await spool.flushed()
    assert [f.count for f in await spool.files()] == [7]  # one file
    d = deliverer(spool, settings(receiver.port, ignore={"actions": ["pull"]}), clock)
    await run_until_idle(d)
    await d.client.aclose()
    envelopes = [
        [(e["action"], e["target"].get("tag")) for e in json.loads(c)["events"]]
        for _, c in receiver.envelopes
    ]
    assert envelopes == [[("push", "v1")], [("push", "v2")], [("delete", "v1")]]
    assert await spool.files() == []  # the trailing pull was passed over too


async def test_files_are_sent_in_the_order_their_writes_began(receiver: Receiver) -> None:
    """A process's file may hold a pull queued before another process's change, and a change
    made after that one: the files go in the order their writes began, so the repository's two
    changes arrive in order, though the first file's oldest event is the younger."""
    receiver.start()
    driver = CheckedDriver(MemoryDriver())
    ticks = iter(range(10**18, 10**18 + 100))
    one, other = (Spool(driver, clock=lambda: next(ticks), window=60.0) for _ in range(2))
    one.add("a", described(ManifestPulled("a", "sha256:" + "2" * 64, "v1", OCI, 10)), defer=True)
    await other.add("a", described(ManifestPushed("a", "sha256:" + "2" * 64, OCI, "v1", 10)))
    await one.add("a", described(TagDeleted("a", "v1")))
    firsts = [min(m[0] for m in (await one.batch(f.name)).meta) for f in await one.files()]
    assert firsts == [10**18 + 1, 10**18]  # listed by write, not by oldest event
    d = deliverer(one, settings(receiver.port), Clock())
    await run_until_idle(d)
    await d.client.aclose()
    assert [e["action"] for e in receiver.events()] == ["push", "pull", "delete"]
