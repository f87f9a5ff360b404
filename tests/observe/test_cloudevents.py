"""CloudEvents format per endpoint: a receiver parses each request with the CloudEvents SDK
(structured mode), in order, signed, with distribution's event as the data; a batched-mode
endpoint gets the same events as one JSON array, each parsed by the SDK's JSON format; another
endpoint on the same queue keeps distribution's envelope."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

from dockyard.config import parse_config
from dockyard.coord.memory import MemoryCoordinator
from dockyard.events import ManifestPushed, TagDeleted
from dockyard.notify.deliver import Deliverer
from dockyard.notify.envelope import describe
from dockyard.notify.spool import Spool
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.drivers.memory import MemoryDriver
from tests.observe.receiver import Receiver
from tests.servers.dockyard import free_port

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
SOURCE = {"addr": "registry.test:5000", "instanceID": "i"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_cloudevents_endpoint_gets_one_parsable_event_per_request() -> None:
    ce, classic, batch = Receiver(free_port()), Receiver(free_port()), Receiver(free_port())
    for receiver in (ce, classic, batch):
        receiver.start()
    hooks: list[dict[str, Any]] = [
        {"name": "ce", "url": f"http://127.0.0.1:{ce.port}/", "format": "cloudevents", "secret": "s"},
        {"name": "classic", "url": f"http://127.0.0.1:{classic.port}/"},
        {
            "name": "batch",
            "url": f"http://127.0.0.1:{batch.port}/",
            "format": "cloudevents-batch",
            "secret": "b",
        },
    ]
    settings = parse_config({"notifications": {"endpoints": hooks}}).notifications
    spool = Spool(CheckedDriver(MemoryDriver()))
    sent = [ManifestPushed("app", f"sha256:{n:064x}", OCI, f"v{n}", 10) for n in range(3)]
    sent.append(TagDeleted("app", "v0"))
    for event in sent:
        described = describe(event, None, SOURCE, "http://r")
        assert described is not None
        await spool.add("app", described)
    deliverer = Deliverer(spool, settings, MemoryCoordinator())
    try:
        while await deliverer.step():
            pass
    finally:
        await deliverer.stop()
        for receiver in (ce, classic, batch):
            receiver.stop()
    assert len(ce.envelopes) == 4  # one request per event
    parsed = []
    for headers, content in ce.envelopes:
        assert headers["content-type"] == "application/cloudevents+json"
        expected = "sha256=" + hmac.new(b"s", content, hashlib.sha256).hexdigest()
        assert headers["x-dockyard-signature"] == expected
        parsed.append(from_http(HTTPMessage(headers=headers, body=content), JSONFormat()))
    assert [e.get_type() for e in parsed] == ["io.dockyard.push"] * 3 + ["io.dockyard.delete"]
    assert [e.get_subject() for e in parsed] == ["app:v0", "app:v1", "app:v2", "app:v0"]
    assert {e.get_source() for e in parsed} == {"dockyard://registry.test:5000"}
    classic_events = classic.events()
    assert [e.get_id() for e in parsed] == [e["id"] for e in classic_events]  # same ids, same order
    data = parsed[0].get_data()
    assert isinstance(data, dict) and data["target"]["tag"] == "v0" and data["action"] == "push"
    assert json.loads(classic.envelopes[0][1])["events"][0]["target"]["repository"] == "app"
    # Batched mode: the four events in one request, an array of the same CloudEvents.
    [(headers, content)] = batch.envelopes
    assert headers["content-type"] == "application/cloudevents-batch+json"
    assert headers["x-dockyard-signature"] == "sha256=" + hmac.new(b"b", content, hashlib.sha256).hexdigest()
    items = json.loads(content)
    assert isinstance(items, list)
    batched = [JSONFormat().read(None, json.dumps(item)) for item in items]
    assert [(e.get_id(), e.get_type(), e.get_subject()) for e in batched] == [
        (e.get_id(), e.get_type(), e.get_subject()) for e in parsed
    ]
    assert batched[3].get_data() == parsed[3].get_data()
