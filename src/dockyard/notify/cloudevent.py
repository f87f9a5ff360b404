"""The CloudEvents JSON format of an event, for endpoints with ``format: cloudevents`` or
``cloudevents-batch``.

``cloudevents``: CloudEvents 1.0 in structured content mode (``application/cloudevents+json``),
one event per request, what every receiver (and the Python SDK) reads. ``cloudevents-batch``: the
HTTP binding's batched mode (``application/cloudevents-batch+json``), a JSON array of the same
events, one request per envelope the sender would send (at most ``deliver.BATCH`` events), for
receivers that read it: fewer requests, and one signature per batch (the SDK has no batch reader;
each item is a structured-mode event it reads).

The attributes: ``id`` is the distribution event's id (a receiver deduplicates by it as before),
``source`` the registry instance (``dockyard://host:port``), ``type`` ``io.dockyard.<action>``
(push, pull, delete, mount; and dockyard's own kinds: ``io.dockyard.repository-delete``,
``io.dockyard.gc``, ``io.dockyard.retention``, ``io.dockyard.quota-warning``, ``io.dockyard.scan``),
``subject`` the repository with its tag or digest (none for a collection, which names no
repository), ``time`` the event's timestamp; ``data`` is the distribution-format event unchanged.
"""

from __future__ import annotations

import json
from typing import Any

MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
TYPE_PREFIX = "io.dockyard."


def cloudevent(event: dict[str, Any]) -> dict[str, Any]:
    target = event["target"]
    reference = (
        f":{target['tag']}" if target.get("tag") else f"@{target['digest']}" if target.get("digest") else ""
    )
    out = {
        "specversion": "1.0",
        "id": event["id"],
        "source": f"dockyard://{event['source']['addr']}",
        "type": TYPE_PREFIX + event["action"],
        "subject": f"{target.get('repository', '')}{reference}",
        "time": event["timestamp"],
        "datacontenttype": "application/json",
        "data": event,
    }
    if "repository" not in target:
        del out["subject"]  # optional in CloudEvents; a collection is of the whole registry
    return out


def cloudevent_body(event: dict[str, Any]) -> bytes:
    return json.dumps(cloudevent(event), separators=(",", ":")).encode()


def cloudevent_batch_body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps([cloudevent(e) for e in events], separators=(",", ":")).encode()
