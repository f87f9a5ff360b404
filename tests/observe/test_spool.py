"""The webhook spool: its file format, and the deferred group commit of pulls' events.

Real parts: the in-memory driver behind the checking wrapper every driver has. The window is
real time on the event loop (``loop.call_later``); the tests wait for futures, never sleep for a
time, and use a window of a minute where it must not pass.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from dockyard.config import parse_config
from dockyard.events import ManifestPulled, ManifestPushed
from dockyard.notify.envelope import Timestamps, body, body_of, describe
from dockyard.notify.spool import Spool
from dockyard.notify.subscriber import NotifySubscriber
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.drivers.memory import MemoryDriver

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
SOURCE = {"addr": "test:5000", "instanceID": "i"}
MINUTE = 60.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pulled(tag: str, media_type: str = OCI) -> dict[str, Any]:
    event = describe(ManifestPulled("team/app", "sha256:" + "2" * 64, tag, media_type, 10), None, SOURCE, "")
    assert event is not None
    return event


def pushed(tag: str) -> dict[str, Any]:
    event = describe(ManifestPushed("team/app", "sha256:" + "3" * 64, OCI, tag, 10), None, SOURCE, "")
    assert event is not None
    return event


def spool(window: float) -> Spool:
    return Spool(CheckedDriver(MemoryDriver()), window=window)


async def events_in(s: Spool) -> list[list[str]]:
    """The tags of each file's events, file by file in order."""
    return [[r.event["target"]["tag"] for r in await s.read(f.name)] for f in await s.files()]


async def test_an_events_line_keeps_the_event_byte_for_byte_and_what_filters_read() -> None:
    s = spool(0)
    odd = 'application/x.odd\t"type"; é'  # a tab, quotes and non-ASCII in a header's field
    queued = [pulled("v1"), pulled("v2", odd), pushed("v3")]
    for event in queued:
        await s.add("team/app", event)
    records = [r for f in await s.files() for r in await s.read(f.name)]
    assert [r.event for r in records] == queued
    assert [(r.repository, r.action, r.media_type) for r in records] == [
        ("team/app", "pull", OCI),
        ("team/app", "pull", odd),
        ("team/app", "push", OCI),
    ]
    assert [r.key for r in records] == sorted(r.key for r in records)
    # The envelope joined from the queued bytes is the one encoded from the events: the same
    # bytes while they are ASCII, the same JSON (UTF-8, not \\u escapes) otherwise.
    assert json.loads(body_of([r.raw for r in records])) == {"events": queued}
    ascii_only = [records[0], records[2]]
    assert body_of([r.raw for r in ascii_only]) == body([queued[0], queued[2]])
    names = [f.name for f in await s.files()]
    assert all(n.endswith(".batch") for n in names)


async def test_files_of_the_earlier_format_are_still_read() -> None:
    s = spool(0)
    event = pushed("old")
    legacy = [{"t": 10**18, "p": 7, "s": 0, "r": "team/app", "e": event}]
    name = f"{10**18:020d}-7-0-1.json"
    await s.driver.put_content(f"{paths.NOTIFICATION_SPOOL}/{name}", json.dumps(legacy).encode())
    [f] = await s.files()
    [record] = await s.read(f.name)
    assert (record.key, record.action, record.media_type, record.event) == (
        (10**18, 7, 0),
        "push",
        OCI,
        event,
    )
    assert json.loads(record.raw) == event


async def test_files_of_the_events_lines_format_are_still_read_and_sent_alike() -> None:
    s = spool(0)
    events = [pushed("v1"), pulled("v2")]
    lines = b"".join(
        orjson.dumps([10**18 + n, 7, n, "team/app", e["action"], e["target"]["mediaType"]])
        + b"\t"
        + orjson.dumps(e)
        + b"\n"
        for n, e in enumerate(events)
    )
    name = f"{10**18:020d}-7-0-2.events"
    await s.driver.put_content(f"{paths.NOTIFICATION_SPOOL}/{name}", lines)
    records = await s.read(name)
    assert [(r.key, r.action, r.event) for r in records] == [
        ((10**18, 7, 0), "push", events[0]),
        ((10**18 + 1, 7, 1), "pull", events[1]),
    ]
    batch = await s.batch(name)
    assert json.loads(body_of([batch.span(0, 2)])) == {"events": events}
    assert [json.loads(batch.span(i, i + 1)) for i in range(2)] == events


async def test_a_batch_slices_any_run_of_its_events() -> None:
    s = spool(MINUTE)
    events = [pulled(f"t{i}" + "é" * i) for i in range(6)]
    for event in events:
        s.add("team/app", event, defer=True)
    await s.flushed()
    [f] = await s.files()
    batch = await s.batch(f.name)
    assert len(batch) == f.count == 6
    for i in range(6):
        for j in range(i + 1, 7):
            assert json.loads(body_of([batch.span(i, j)])) == {"events": events[i:j]}
    assert [m[3] for m in batch.meta] == ["pull"] * 6


async def test_a_pulls_event_waits_for_the_window_then_is_written() -> None:
    s = spool(0.05)
    written = s.add("team/app", pulled("v1"), defer=True)
    await asyncio.sleep(0)  # let any write that would start now start
    assert not written.done() and await s.files() == []
    await asyncio.wait_for(written, 10)
    assert await events_in(s) == [["v1"]]


async def test_a_change_takes_the_waiting_pulls_with_it_in_order() -> None:
    s = spool(MINUTE)
    first = s.add("team/app", pulled("a"), defer=True)
    s.add("team/app", pulled("b"), defer=True)
    change = s.add("team/app", pushed("c"))
    await asyncio.wait_for(change, 10)
    assert first.done()
    assert await events_in(s) == [["a", "b", "c"]]


async def test_a_stream_of_pulls_is_one_write_per_window() -> None:
    s = spool(MINUTE)
    for i in range(300):
        s.add("team/app", pulled(f"t{i}"), defer=True)
        if i % 10 == 0:
            await asyncio.sleep(0)
    assert await s.files() == []  # a minute has not passed: nothing written yet
    await asyncio.wait_for(s.drain(), 10)  # shutting down writes them without waiting it out
    assert await events_in(s) == [[f"t{i}" for i in range(300)]]


async def test_flushed_writes_waiting_pulls_at_once() -> None:
    s = spool(MINUTE)
    s.add("team/app", pulled("a"), defer=True)
    await asyncio.wait_for(s.flushed(), 10)
    assert await events_in(s) == [["a"]]


async def test_pulls_queued_while_a_write_is_in_flight_wait_for_their_window() -> None:
    gate = asyncio.Event()

    class Slow(CheckedDriver):
        async def put_content(self, path: str, content: bytes) -> None:
            await gate.wait()
            await super().put_content(path, content)

    s = Spool(Slow(MemoryDriver()), window=MINUTE)
    change = s.add("team/app", pushed("c"))
    await asyncio.sleep(0)  # the change's write starts and waits at the gate
    s.add("team/app", pulled("p"), defer=True)
    gate.set()
    await asyncio.wait_for(change, 10)
    for _ in range(5):
        await asyncio.sleep(0)
    assert await events_in(s) == [["c"]]  # the pull did not start a write of its own
    await asyncio.wait_for(s.drain(), 10)
    assert await events_in(s) == [["c"], ["p"]]


async def test_no_window_writes_a_pulls_event_at_once() -> None:
    s = spool(0)
    await asyncio.wait_for(s.add("team/app", pulled("now"), defer=True), 10)
    assert await events_in(s) == [["now"]]


def test_the_window_is_stated_and_bounded() -> None:
    assert parse_config({}).notifications.pullwindow == 0.1
    assert parse_config({"notifications": {"pullwindow": "250ms"}}).notifications.pullwindow == 0.25
    with pytest.raises(ValueError, match="pullwindow is between 0 and 10s"):
        parse_config({"notifications": {"pullwindow": "1m"}})


async def test_a_deferred_pull_is_described_by_its_write() -> None:
    s = spool(MINUTE)
    made: list[str] = []

    def make() -> dict[str, Any]:
        made.append("v1")
        return pulled("v1")

    s.add_deferred("team/app", make)
    assert made == []  # not in the request
    await asyncio.wait_for(s.flushed(), 10)
    assert made == ["v1"]  # once, by the write
    assert await events_in(s) == [["v1"]]


async def test_a_pulls_event_has_the_time_of_the_pull_not_of_its_write() -> None:
    s = spool(MINUTE)
    config = parse_config(
        {"http": {"addr": ":5000"}, "notifications": {"endpoints": [{"name": "e", "url": "http://h/"}]}}
    )
    subscriber = NotifySubscriber(s, config)
    now = [1_764_620_705_123_456_789]
    subscriber.timestamps = Timestamps(clock=lambda: now[0])
    subscriber.emit(ManifestPulled("team/app", "sha256:" + "2" * 64, "v1", OCI, 10))
    now[0] += 3_000_000_000  # the write comes later
    subscriber.emit(ManifestPushed("team/app", "sha256:" + "3" * 64, OCI, "v2", 10))
    await asyncio.wait_for(s.flushed(), 10)
    [f] = await s.files()
    records = await s.read(f.name)
    assert [(r.action, r.event["timestamp"]) for r in records] == [
        ("pull", "2025-12-01T20:25:05.123456Z"),
        ("push", "2025-12-01T20:25:08.123456Z"),
    ]


async def test_an_event_that_cannot_be_described_is_left_out_and_the_rest_written(caplog: Any) -> None:
    s = spool(MINUTE)

    def broken() -> dict[str, Any]:
        raise ValueError("no")

    s.add_deferred("team/app", lambda: pulled("a"))
    s.add_deferred("team/app", broken)
    change = s.add("team/app", pushed("c"))
    await asyncio.wait_for(change, 10)
    assert change.exception() is None
    assert await events_in(s) == [["a", "c"]]
    assert "could not be described" in caplog.text
