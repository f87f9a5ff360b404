"""The bench's webhook receiver counts an envelope's events without decoding them: the count
must equal the events array's length, whatever the events' strings hold."""

from __future__ import annotations

import orjson
from bench.receiver import count_events
from hypothesis import given
from hypothesis import strategies as st

from dockyard.events import ManifestPulled
from dockyard.events.request import RequestInfo
from dockyard.notify.envelope import body_of, describe


def _pull(useragent: str, tag: str) -> bytes:
    event = ManifestPulled(
        "library/small", "sha256:" + "a" * 64, tag, "application/vnd.oci.image.manifest.v1+json", 7
    )
    request = RequestInfo(id="r", addr="127.0.0.1:1", host="h", method="GET", useragent=useragent)
    described = describe(event, request, {"addr": "h:1", "instanceID": "i"}, "http://h")
    assert described is not None
    return orjson.dumps(described)


@given(st.lists(st.tuples(st.text(), st.text(min_size=1)), max_size=20))
def test_an_envelope_counts_its_events(agents_and_tags: list[tuple[str, str]]) -> None:
    raws = [_pull(agent, tag) for agent, tag in agents_and_tags]
    body = body_of(raws)
    assert count_events(body) == len(orjson.loads(body)["events"]) == len(raws)


def test_a_hostile_user_agent_does_not_add_events() -> None:
    raws = [_pull('x","timestamp":"y', "latest"), _pull('"timestamp": ', "t")]
    assert count_events(body_of(raws)) == 2


def test_a_cloudevent_is_one_and_garbage_none() -> None:
    assert count_events(b'{"specversion":"1.0","type":"x","timestamp":1}') == 1
    assert count_events(b"not json") == 0
