"""An event's timestamp is what ``datetime.isoformat`` writes, though the date and time of day are
formatted once per second."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from dockyard.notify.envelope import Timestamps

# From 1970 to 2200, in nanoseconds.
NS = st.integers(min_value=0, max_value=7_258_118_400 * 10**9)


def isoformat(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@given(st.lists(NS, min_size=1, max_size=20))
def test_each_timestamp_is_isoformats(times: list[int]) -> None:
    # One instance over many times, in any order: a second's cached prefix never leaks into another.
    times = times + [t + 1 for t in times] + [t + 10**9 - 1 for t in times]
    now = iter(times)
    stamps = Timestamps(lambda: next(now))
    assert [stamps() for _ in times] == [isoformat(t) for t in times]


def test_the_seconds_edges() -> None:
    times = [1_764_617_105_999_999_999, 1_764_617_106_000_000_000, 1_764_617_106_000_000_999, 0]
    now = iter(times)
    stamps = Timestamps(lambda: next(now))
    assert [stamps() for _ in times] == [
        "2025-12-01T19:25:05.999999Z",
        "2025-12-01T19:25:06.000000Z",
        "2025-12-01T19:25:06.000000Z",
        "1970-01-01T00:00:00.000000Z",
    ]
