"""The metrics a worker keeps, read from its own registry (one process: no multiprocess files)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import bcrypt
import pytest

from dockyard.events import CollectionFinished
from dockyard.services import Services
from tests.observe.conftest import AppFactory, make_services

pytestmark = pytest.mark.anyio
METRICS = {"http": {"debug": {"addr": "127.0.0.1:5001", "prometheus": {"enabled": True}}}}


def value(services: Services, name: str, **labels: str) -> float:
    assert services.metrics is not None
    services.metrics.flush()  # the tallies of the last second
    found = services.metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_metrics_stay_off_without_a_debug_listener(tmp_path: Path) -> None:
    assert make_services(tmp_path).metrics is None
    enabled_nowhere = {"http": {"debug": {"prometheus": {"enabled": True}}}}
    assert make_services(tmp_path, enabled_nowhere).metrics is None
    assert make_services(tmp_path, METRICS).metrics is not None


async def test_requests_by_route_and_status_with_bytes_and_storage(
    make_client: AppFactory, tmp_path: Path
) -> None:
    services = make_services(tmp_path, METRICS)
    blob = b"x" * 1000
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    async with make_client(services=services) as client:
        for _ in range(3):
            assert (await client.get("/v2/")).status_code == 200
        assert (await client.get("/v2/absent/manifests/latest")).status_code == 404
        assert (await client.post(f"/v2/app/blobs/uploads/?digest={digest}", content=blob)).status_code == 201
        fetched = await client.get(f"/v2/app/blobs/{digest}")
        assert fetched.content == blob
        assert (await client.get("/health")).status_code == 200
    assert value(services, "dockyard_http_requests_total", route="base", method="GET", status="200") == 3
    assert value(services, "dockyard_http_requests_total", route="manifest", method="GET", status="404") == 1
    assert (
        value(services, "dockyard_http_requests_total", route="upload-start", method="POST", status="201")
        == 1
    )
    assert value(services, "dockyard_http_requests_total", route="health", method="GET", status="200") == 1
    assert value(services, "dockyard_http_request_duration_seconds_count", route="base", method="GET") == 3
    assert value(services, "dockyard_http_request_bytes_total", route="upload-start") == len(blob)
    assert value(services, "dockyard_http_response_bytes_total", route="blob") == len(blob)
    assert value(services, "dockyard_uploads_in_progress") == 0  # counted while the body came, then not
    assert value(services, "dockyard_storage_operations_total", operation="commit", outcome="ok") == 1
    assert value(services, "dockyard_storage_operations_total", operation="read", outcome="ok") >= 1
    assert value(services, "dockyard_storage_operation_duration_seconds_count", operation="commit") == 1


async def test_an_upload_counts_as_in_progress_while_its_body_arrives(
    make_client: AppFactory, tmp_path: Path
) -> None:
    services = make_services(tmp_path, METRICS)
    seen: list[float] = []
    blob = b"y" * 300

    async def body():  # type: ignore[no-untyped-def]
        yield blob[:100]
        seen.append(value(services, "dockyard_uploads_in_progress"))
        yield blob[100:]

    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    async with make_client(services=services) as client:
        answer = await client.post(f"/v2/app/blobs/uploads/?digest={digest}", content=body())
        assert answer.status_code == 201
    assert seen == [1.0]
    assert value(services, "dockyard_uploads_in_progress") == 0


async def test_failed_and_throttled_logins(make_client: AppFactory, tmp_path: Path) -> None:
    users = tmp_path / "htpasswd"
    users.write_text("alice:" + bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4)).decode() + "\n")
    config = {**METRICS, "auth": {"htpasswd": {"path": str(users)}, "throttle": {"attempts": 2}}}
    services = make_services(tmp_path, config)

    def basic(password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()}

    async with make_client(services=services) as client:
        assert (await client.get("/v2/", headers=basic("right"))).status_code == 200
        assert [(await client.get("/v2/", headers=basic("wrong"))).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
    assert value(services, "dockyard_auth_failed_logins_total") == 2
    assert value(services, "dockyard_auth_throttled_logins_total") == 1
    assert value(services, "dockyard_http_requests_total", route="base", method="GET", status="429") == 1


async def test_garbage_collections_counted_with_what_they_freed(
    make_client: AppFactory, tmp_path: Path
) -> None:
    services = make_services(tmp_path, METRICS)
    async with make_client(services=services) as client:
        assert (await client.post("/admin/v1/gc", json={"dryRun": True})).status_code == 200
        run = await client.post("/admin/v1/gc", json={"dryRun": False})
        assert run.status_code == 200
    assert value(services, "dockyard_gc_runs_total", dry_run="true") == 1
    assert value(services, "dockyard_gc_runs_total", dry_run="false") == 1
    assert value(services, "dockyard_gc_freed_bytes_total") == run.json()["bytes_freed"]
    # What a collection that freed something reports (fresh blobs are inside the timestamp slack,
    # so a test cannot make one old enough without waiting): the event the collector emits.
    services.registry.events.emit(CollectionFinished(2, 1, 600, 0.5, dry_run=False))
    services.registry.events.emit(CollectionFinished(9, 9, 9000, 0.5, dry_run=True))
    assert value(services, "dockyard_gc_freed_bytes_total") == run.json()["bytes_freed"] + 600
    assert value(services, "dockyard_gc_deleted_blobs_total") == len(run.json()["blobs_deleted"]) + 2
    assert value(services, "dockyard_gc_runs_total", dry_run="true") == 2


def test_tallies_reach_the_histogram_as_observations_would() -> None:
    """The batched flush writes the same series a plain ``observe`` per request would."""
    from dockyard.metrics.collectors import REQUEST_BUCKETS, Metrics

    batched, direct = Metrics(), Metrics()
    samples = [0.0004, 0.001, 0.003, 0.003, 0.7, 200.0]
    for seconds in samples:
        batched.request("base", "GET", 200, seconds, 3, 5)
        direct.request_seconds.labels("base", "GET").observe(seconds)
    batched.flush()

    def series(m: Metrics, suffix: str, **labels: str) -> float | None:
        return m.registry.get_sample_value(f"dockyard_http_request_duration_seconds{suffix}", labels)

    for bound in [*REQUEST_BUCKETS, float("inf")]:
        le = "+Inf" if bound == float("inf") else str(bound)
        labels = {"route": "base", "method": "GET", "le": le}
        assert series(batched, "_bucket", **labels) == series(direct, "_bucket", **labels), le
    assert series(batched, "_count", route="base", method="GET") == len(samples)
    assert series(batched, "_sum", route="base", method="GET") == pytest.approx(sum(samples))
    assert batched.registry.get_sample_value("dockyard_http_request_bytes_total", {"route": "base"}) == 18
