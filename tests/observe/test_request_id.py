"""X-Request-Id: kept when sane, made when absent or not, answered, logged, and told to events."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from dockyard.events import Event, Fanout, ManifestPushed
from dockyard.events.request import RequestInfo, current_request, request_id
from tests.observe.conftest import AppFactory, make_services

pytestmark = pytest.mark.anyio
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_sane_ids_are_kept_and_others_replaced() -> None:
    for kept in ("abc", "0f3c9a1e-5b7d-4c1e-9f7a-2b6d8e4a1c3f", "00-4bf92f3577b34da6-00f067aa0ba902b7-01"):
        assert request_id(kept) == kept
    for refused in (None, "", "-leading-dash", "a b", "x" * 129, "é", "a\r\nSet-Cookie: x", "<script>"):
        made = request_id(refused)
        assert made != refused and UUID.fullmatch(made), refused


async def test_the_id_is_answered_on_every_surface(make_client: AppFactory) -> None:
    async with make_client() as client:
        given = await client.get("/v2/", headers={"X-Request-Id": "trace-42"})
        assert given.headers["x-request-id"] == "trace-42"
        made = await client.get("/v2/", headers={"X-Request-Id": "bad id with spaces"})
        assert UUID.fullmatch(made.headers["x-request-id"])
        missing = await client.get("/v2/nope/manifests/latest")
        assert missing.status_code == 404 and UUID.fullmatch(missing.headers["x-request-id"])
        health = await client.get("/health")
        assert UUID.fullmatch(health.headers["x-request-id"])
        assert len({made.headers["x-request-id"], missing.headers["x-request-id"]}) == 2


async def test_the_access_log_carries_the_id(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger("dockyard").propagate = True  # as create_app leaves it: caplog listens at the root
    async with make_client() as client:
        with caplog.at_level(logging.INFO, logger="dockyard.access"):
            await client.get("/v2/_catalog", headers={"X-Request-Id": "logged-1"})
    lines = [r for r in caplog.records if r.name == "dockyard.access"]
    assert [getattr(r, "request_id", None) for r in lines] == ["logged-1"]


class Capture:
    def __init__(self) -> None:
        self.seen: list[tuple[Event, RequestInfo | None]] = []

    def emit(self, event: Event) -> None:
        info = current_request()
        self.seen.append((event, None if info is None else RequestInfo(**_fields(info))))


def _fields(info: RequestInfo) -> dict[str, Any]:
    return {k: getattr(info, k) for k in RequestInfo.__slots__}


async def test_events_see_the_request_they_happened_in(make_client: AppFactory, tmp_path: Path) -> None:
    services = make_services(tmp_path)
    capture = Capture()
    events = services.registry.events
    assert isinstance(events, Fanout)
    events.subscribers = (*events.subscribers, capture)
    client = make_client(services=services)
    config = b'{"os":"linux"}'
    async with client:
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        await client.post(f"/v2/app/blobs/uploads/?digest={digest}", content=config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": digest,
                    "size": len(config),
                },
                "layers": [],
            }
        )
        put = await client.put(
            "/v2/app/manifests/v1",
            content=manifest,
            headers={
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "X-Request-Id": "push-7",
                "User-Agent": "docker/27",
            },
        )
        assert put.status_code == 201
    pushed = [(e, i) for e, i in capture.seen if isinstance(e, ManifestPushed)]
    assert len(pushed) == 1
    info = pushed[0][1]
    assert info is not None
    assert (info.id, info.method, info.route, info.useragent, info.host) == (
        "push-7",
        "PUT",
        "manifest",
        "docker/27",
        "registry.test",
    )
