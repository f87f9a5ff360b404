"""The PostgreSQL outbox and audit table with two replicas: events pushed through both are
delivered once each, in order per repository, by one sender; audit records written by both are
answered by either; the queue cap drops the oldest, counted and logged."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.events import TagDeleted
from dockyard.notify.deliver import BATCH, STEP
from dockyard.notify.envelope import describe
from dockyard.notify.outbox import OutboxDeliverer
from dockyard.services import Services
from tests.observe.receiver import Receiver
from tests.outbox.conftest import client_of, replica

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b'{"os":"linux"}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def manifest(n: int) -> bytes:
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": CONFIG_DIGEST,
        "size": len(CONFIG),
    }
    doc = {"schemaVersion": 2, "mediaType": OCI, "config": config, "layers": [], "annotations": {"n": str(n)}}
    return json.dumps(doc).encode()


async def push(client: httpx.AsyncClient, repository: str, n: int) -> None:
    blob = await client.post(f"/v2/{repository}/blobs/uploads/?digest={CONFIG_DIGEST}", content=CONFIG)
    assert blob.status_code == 201, blob.text
    put = await client.put(
        f"/v2/{repository}/manifests/t{n}", content=manifest(n), headers={"Content-Type": OCI}
    )
    assert put.status_code == 201, put.text


def sender(services: Services, clock: Clock) -> OutboxDeliverer:
    assert services.notifier is not None
    deliverer = services.notifier.deliverer
    assert isinstance(deliverer, OutboxDeliverer)
    deliverer.clock = clock
    return deliverer


async def close(*all: Services) -> None:
    for services in all:
        assert services.notifier is not None
        await services.notifier.deliverer.stop()
        await services.coordinator.close()


async def test_events_from_both_replicas_are_delivered_once_in_order(
    tmp_path: Path, dsn: str, receiver: Receiver
) -> None:
    one, two = replica(tmp_path, dsn, receiver.port), replica(tmp_path, dsn, receiver.port)
    clock = Clock()
    first, second = sender(one, clock), sender(two, clock)
    try:
        async with client_of(one) as a, client_of(two) as b:
            for n in range(4):  # interleaved over both replicas and two repositories
                await push(a if n % 2 else b, "app", n)
                await push(b if n % 2 else a, "lib", n)
            # One sender at a time: the lease is in the database.
            assert [await first._lead(), await second._lead()] == [True, False]
            assert await first.step() is False  # the receiver is down: a failure, kept for later
            status = await two.notifier.status() if two.notifier else []
            assert status[0]["pending"] == 16 and status[0]["failures"] == 1
            assert status[0]["lastError"] and status[0]["lastSuccessAt"] is None
            receiver.start()
            assert await first.step() is False  # not before the backoff is over
            clock.now += 1.0
            while await first.step():
                pass
        events = receiver.events()
        assert len(events) == 16 and len({e["id"] for e in events}) == 16  # once each
        for repository in ("app", "lib"):
            tags = [e["target"].get("tag") for e in events if e["target"]["repository"] == repository]
            assert [t for t in tags if t] == ["t0", "t1", "t2", "t3"]
        status = await one.notifier.status() if one.notifier else []
        assert status[0]["pending"] == 0 and status[0]["delivered"] == 16 and status[0]["failures"] == 0
    finally:
        await close(one, two)


async def test_audit_records_of_both_replicas_are_answered_by_either(
    tmp_path: Path, dsn: str, receiver: Receiver
) -> None:
    one, two = replica(tmp_path, dsn, receiver.port), replica(tmp_path, dsn, receiver.port)
    try:
        async with client_of(one) as a, client_of(two) as b:
            await push(a, "app", 1)
            await push(b, "app", 2)
            assert (await b.delete("/v2/app/manifests/t1")).status_code == 202
            for client in (a, b):
                answer = await client.get("/admin/v1/audit", params={"repository": "app"})
                assert answer.status_code == 200, answer.text
                records = answer.json()["records"]
                assert [(r["action"], r.get("tag")) for r in records] == [
                    ("push", "t1"),
                    ("push", "t2"),
                    ("tag-delete", "t1"),
                ]
            pushes = (await a.get("/admin/v1/audit", params={"action": "push", "since": "1h"})).json()
            assert len(pushes["records"]) == 2
            assert (await a.get("/admin/v1/audit", params={"repository": "other"})).json()["records"] == []
        assert one.audit is not None
        one.audit.retention = 0.0
        assert await one.audit.prune() == 3
    finally:
        await close(one, two)


async def test_past_the_cap_the_oldest_are_dropped_counted_and_logged(
    tmp_path: Path, dsn: str, receiver: Receiver, caplog: Any
) -> None:
    services = replica(tmp_path, dsn, receiver.port, {"notifications": {"maxpending": 3}})
    deliverer = sender(services, Clock())
    receiver.start()
    try:
        async with client_of(services) as client:
            for n in range(3):
                await push(client, "app", n)  # 6 events: the blob's and the manifest's each
        with caplog.at_level(logging.WARNING, logger="dockyard.notify"):
            while await deliverer.step():
                pass
        assert any("queue full" in r.getMessage() for r in caplog.records)
        events = receiver.events()
        # the newest 3: t1's manifest, then t2's blob and manifest
        assert [e["target"].get("tag") for e in events] == ["t1", None, "t2"]
        status = (await deliverer.status())[0]
        assert status["dropped"] == 3 and status["delivered"] == 3 and status["pending"] == 0
    finally:
        await close(services)


async def test_a_step_sends_envelope_after_envelope_and_deletes_the_rows_once(
    tmp_path: Path, dsn: str, receiver: Receiver
) -> None:
    one = replica(tmp_path, dsn, receiver.port)
    first = sender(one, Clock())
    assert one.notifier is not None
    try:
        events = []
        for n in range(STEP + 40):
            event = describe(TagDeleted("app", f"t{n}"), None, {"addr": "a", "instanceID": "i"}, "")
            assert event is not None
            events.append(one.notifier.spool.add("app", event))
        await asyncio.gather(*events)  # group-committed
        receiver.start()
        assert await first._lead()
        assert await first.step() is True  # the step's rows are sent; 40 wait for the next
        sizes = [len(json.loads(content)["events"]) for _, content in receiver.envelopes]
        assert sizes == [BATCH] * (STEP // BATCH)
        assert await first.pending("ci") == 40
        assert await first.step() is False
        tags = [e["target"]["tag"] for e in receiver.events()]
        assert tags == [f"t{n}" for n in range(STEP + 40)]
    finally:
        await close(one)


async def test_failures_halve_the_envelope_and_a_success_restores_it(
    tmp_path: Path, dsn: str, receiver: Receiver
) -> None:
    one = replica(tmp_path, dsn, receiver.port)
    clock = Clock()
    first = sender(one, clock)
    assert one.notifier is not None
    try:
        total = BATCH + BATCH // 2
        events = []
        for n in range(total):
            event = describe(TagDeleted("app", f"t{n}"), None, {"addr": "a", "instanceID": "i"}, "")
            assert event is not None
            events.append(one.notifier.spool.add("app", event))
        await asyncio.gather(*events)
        receiver.refuse_over = BATCH // 4  # a receiver that cannot take full envelopes
        receiver.start()
        assert await first._lead()
        for _ in range(20):
            await first.step()
            clock.now = max(clock.now, (await first.load_state("ci")).retry_at)
        # As the spool's sender: full refused, half refused, a quarter taken, full again.
        quarter, half = BATCH // 4, BATCH // 2
        assert receiver.refused == [BATCH, half] * 3 + [total - 3 * quarter, half, half, half]
        assert [len(json.loads(content)["events"]) for _, content in receiver.envelopes] == [quarter] * 6
        assert [e["target"]["tag"] for e in receiver.events()] == [f"t{n}" for n in range(total)]
        assert await first.pending("ci") == 0
    finally:
        await close(one)
