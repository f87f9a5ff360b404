"""Events as distribution's notifications: the same JSON, so existing receivers work unchanged.

distribution's ``events[]`` item: ``id``, ``timestamp``, ``action`` (push, pull, delete, mount),
``target`` {``mediaType``, ``size``, ``digest``, ``length``, ``repository``, ``url``, ``tag``},
``request`` {``id``, ``addr``, ``host``, ``method``, ``useragent``}, ``actor`` {``name``},
``source`` {``addr``, ``instanceID``}; the body is ``{"events": [...]}`` with the media type
``application/vnd.docker.distribution.events.v1+json``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from dockyard.config import Endpoint
from dockyard.events import BlobPushed, Event, ManifestDeleted, ManifestPulled, ManifestPushed, TagDeleted
from dockyard.events.request import RequestInfo

MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
SIGNATURE_HEADER = "X-Dockyard-Signature"
LAYER = "application/octet-stream"  # what distribution names a blob's target


def describe(
    event: Event, request: RequestInfo | None, source: dict[str, str], base_url: str
) -> dict[str, Any] | None:
    """The distribution event for ``event``, or None for events distribution does not send."""
    target: dict[str, Any]
    if isinstance(event, BlobPushed):
        action = "mount" if event.mounted else "push"
        target = {"mediaType": LAYER, "size": event.size, "digest": event.digest, "length": event.size}
        target["url"] = f"{base_url}/v2/{event.repository}/blobs/{event.digest}"
    elif isinstance(event, ManifestPushed | ManifestPulled):
        action = "push" if isinstance(event, ManifestPushed) else "pull"
        target = {
            "mediaType": event.media_type,
            "size": event.size,
            "digest": event.digest,
            "length": event.size,
        }
        target["url"] = f"{base_url}/v2/{event.repository}/manifests/{event.digest}"
        if event.tag is not None:
            target["tag"] = event.tag
    elif isinstance(event, ManifestDeleted):
        action, target = "delete", {"digest": event.digest}
    elif isinstance(event, TagDeleted):
        action, target = "delete", {"tag": event.tag}
    else:
        return None
    target["repository"] = event.repository
    out: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "action": action,
        "target": target,
        "request": {},
        "actor": {},
        "source": source,
    }
    if request is not None:
        out["request"] = {
            "id": request.id,
            "addr": request.addr,
            "host": request.host,
            "method": request.method,
            "useragent": request.useragent,
        }
        if request.actor:
            out["actor"] = {"name": request.actor}
    return out


def wanted(endpoint: Endpoint, event: dict[str, Any]) -> bool:
    """Whether ``endpoint`` wants ``event`` (its ignored media types and actions)."""
    if event["action"] in endpoint.ignore.actions:
        return False
    media_type = event["target"].get("mediaType")
    ignored = (*endpoint.ignoredmediatypes, *endpoint.ignore.mediatypes)
    return media_type is None or media_type not in ignored


def body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"events": events}, separators=(",", ":")).encode()


def sign(secret: str, content: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()
