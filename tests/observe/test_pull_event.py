"""A pull's event has a builder of its own (``notify.envelope.pull``, the one a busy registry runs
for most requests); it must make exactly the JSON ``describe`` makes of the same pull, key order
included, for any names, clients and tags."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from dockyard.events import ManifestPulled
from dockyard.events.request import RequestInfo
from dockyard.notify.envelope import describe, pull

SOURCE = {"addr": "host:5000", "instanceID": "i-1"}
texts = st.text(max_size=40)
requests = st.none() | st.builds(
    RequestInfo,
    id=texts,
    addr=texts,
    host=texts,
    method=st.sampled_from(["GET", "HEAD"]),
    useragent=texts,
    actor=st.none() | texts,
)
pulls = st.builds(
    ManifestPulled,
    repository=st.text(min_size=1, max_size=30),
    digest=st.text(min_size=1, max_size=80),
    tag=st.none() | st.text(min_size=1, max_size=20),
    media_type=texts,
    size=st.integers(min_value=0, max_value=2**40),
)


def _same_id(a: dict[str, object], b: dict[str, object]) -> bytes:
    return orjson.dumps({**a, "id": b["id"]})


@given(pulls, requests, texts)
def test_pull_makes_what_describe_makes(
    event: ManifestPulled, request: RequestInfo | None, base: str
) -> None:
    timestamp = "2026-12-02T00:00:00.000001Z"
    fast = pull(event, request, SOURCE, base, timestamp)
    general = describe(event, request, SOURCE, base, lambda: timestamp)
    assert general is not None
    assert _same_id(fast, general) == orjson.dumps(general)
    assert fast["id"] != general["id"]  # each event its own id


def test_the_kinds_no_webhook_hears_of_are_left_out() -> None:
    from dockyard.events import LoginFailed, LoginSucceeded, RobotCreated, RobotRevoked, TagResolved
    from dockyard.notify import envelope

    silent = [
        TagResolved("r/a", "v1", "sha256:" + "a" * 64),
        LoginSucceeded("alice", "10.0.0.1"),
        LoginFailed("alice", "10.0.0.1"),
        RobotCreated("robot$ci", ("r/a",), ("pull",), None),
        RobotRevoked("robot$ci"),
    ]
    assert {type(e) for e in silent} == envelope._SILENT
    for event in silent:
        assert describe(event, None, SOURCE, "") is None
        # the kinds' own chains agree: the early exit only saves their walk
        assert envelope._distribution_kind(event, "") is None and envelope._dockyard_kind(event) is None
