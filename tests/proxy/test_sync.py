"""``sync`` rules: selected tags mirrored ahead of time, with progress and the last result in the
admin API, run by one process through the maintenance scheduler's lease."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.app import build_app
from dockyard.config import SyncRule
from dockyard.maintenance import Job, Scheduler
from dockyard.oci.digest import Digest
from dockyard.proxy import tasks
from dockyard.proxy.sync import select
from dockyard.semver import matches, parse_range
from tests.proxy.conftest import Proxy, Upstream
from tests.proxy.images import push, push_index

pytestmark = pytest.mark.anyio
TAGS = ["1.25.0", "1.26.1", "v1.27", "1.27.3", "1.27.3-alpine", "2.0.0", "latest", "stable"]


def test_semver_ranges_and_selection() -> None:
    def ok(tag: str, spec: str) -> bool:
        return matches(tag, parse_range(spec))

    assert ok("1.27.3", ">=1.25 <2") and not ok("2.0.0", ">=1.25 <2") and not ok("latest", ">=0")
    assert ok("v1.27", "=1.27.0") and ok("1.27", "1.27") and not ok("1.27.3-alpine", ">=1.25")
    assert ok("1.27.3-alpine", ">=1.27.3-a, <2") and not ok("1.27.3-alpine", "1.27.3")
    assert (
        ok("1.9.9", "^1.2") and not ok("2.0.0", "^1.2") and ok("0.3.9", "^0.3.1") and not ok("0.4.0", "^0.3")
    )
    assert ok("0.0.3", "^0.0.3") and not ok("0.0.4", "^0.0.3")
    assert ok("1.2.9", "~1.2.0") and not ok("1.3.0", "~1.2.0") and ok("3.0.0", "<1 || >=3")
    assert ok("1.0.0", ">0.9.9,<=1.0.0") and not ok("1.0.0", ">1.0.0")
    assert ok("1.0.0-rc.10", ">=1.0.0-rc.2 <1.0.0") and not ok("1.0.0-rc.1", ">=1.0.0-rc.2 <1.0.0")
    assert ok("1.0.0-rc.a", ">1.0.0-rc.9 <1.0.0")  # alphanumeric identifiers sort after numbers
    for bad in ("", ">=1.x <<2", "1.2 ||", ">= ", "1.2 <", ">=one"):
        with pytest.raises(ValueError, match="semver"):
            parse_range(bad)

    rule = SyncRule(repositories=["docker.io/x"], semver=">=1.25 <2", limit=3)
    assert select(rule, TAGS) == ["1.26.1", "v1.27", "1.27.3"]
    rule = SyncRule(repositories=["docker.io/x"], tags=r"1\.2[67].*")
    assert select(rule, TAGS) == ["1.26.1", "1.27.3", "1.27.3-alpine"]
    assert select(SyncRule(repositories=["docker.io/x"], limit=1), TAGS) == ["v1.27"]


def test_sync_rules_are_checked_in_the_configuration() -> None:
    from dockyard.config import ConfigError, parse_config

    up = [{"prefix": "docker.io", "remoteurl": "http://127.0.0.1:9"}]
    for rule, message in (
        ({"repositories": ["quay.io/x"]}, "lies under no upstream"),
        ({"repositories": ["docker.io/x"], "semver": ">=one"}, "not a range"),
        ({"repositories": ["docker.io/x"], "tags": "(["}, "not a regular expression"),
        ({"repositories": []}, "at least one repository"),
        ({"repositories": ["docker.io/x"], "interval": 0}, "more than 0"),
        ({"repositories": ["docker.io/x"], "platforms": ["amd64"]}, "not a platform"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config({"storage": {"inmemory": {}}, "proxy": {"upstreams": up, "sync": [rule]}})
    with pytest.raises(ConfigError, match="more than 0"):
        parse_config({"storage": {"inmemory": {}}, "proxy": {"upstreams": up, "cache": {"interval": 0}}})


async def test_a_rule_mirrors_the_selected_tags_and_platforms_ahead_of_time(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    async with up.client() as c:
        plain = {t: await push(c, "library/web", t, seed=f"web {t}", sizes=(50_000,)) for t in TAGS}
        amd = await push(c, "library/multi", None, seed="multi amd64", sizes=(60_000,))
        arm = await push(c, "library/multi", None, seed="multi arm64", sizes=(60_000,), arch="arm64")
        index = await push_index(c, "library/multi", "1.27.0", {"amd64": amd, "arm64": arm})
    rules = [
        {"repositories": ["docker.io/library/web"], "semver": ">=1.26 <2", "interval": "1h"},
        {"repositories": ["docker.io/library/multi", "docker.io/library/gone"], "platforms": ["linux/amd64"]},
    ]
    proxy = make_proxy({"docker.io": (up, {})}, {"proxy": {"sync": rules}})
    registry = proxy.services.registry
    syncer = proxy.services.proxy.syncer  # type: ignore[union-attr]
    assert syncer is not None

    r = await proxy.client.get("/admin/v1/proxy/sync")
    assert [(x["rule"], x["last"], x["current"]) for x in r.json()["rules"]] == [
        (0, None, None),
        (1, None, None),
    ]

    progress = await syncer.run(0)
    assert progress.state == "ok" and progress.tags_done == progress.tags_total == 3
    assert progress.manifests_fetched == 3 and progress.blobs_fetched == 6
    cached = await registry.tags.names("docker.io/library/web")
    assert cached == ["1.26.1", "1.27.3", "v1.27"]
    for tag in cached:
        for blob in plain[tag].blobs:
            assert await registry.blobs.size_global(Digest.parse(blob)) is not None
    assert up.count("GET", "/library/web/blobs/") == 6

    again = await syncer.run(0)  # cached: nothing fetched again (revalidation only)
    assert again.manifests_fetched == 0 and again.blobs_fetched == 0
    assert up.count("GET", "/library/web/blobs/") == 6

    progress = await syncer.run(1)
    assert progress.state == "failed" and progress.tags_done == 1
    assert len(progress.errors) == 1 and "docker.io/library/gone" in progress.errors[0]
    assert await registry.tags.resolve("docker.io/library/multi", "1.27.0") == Digest.parse(index)
    assert await registry.manifests.exists("docker.io/library/multi", Digest.parse(amd.digest))
    assert not await registry.manifests.exists("docker.io/library/multi", Digest.parse(arm.digest))
    for blob in arm.blobs:  # the arm64 image's blobs were never fetched
        assert await registry.blobs.size_global(Digest.parse(blob)) is None

    r = await proxy.client.get("/admin/v1/proxy/sync")
    status = r.json()["rules"]
    assert status[0]["semver"] == ">=1.26 <2" and status[0]["intervalSeconds"] == 3600
    assert status[0]["current"] is None and status[0]["last"]["state"] == "ok"
    assert status[0]["last"]["tags_done"] == 3 and status[0]["last"]["finished"] is not None
    assert status[1]["last"]["state"] == "failed" and status[1]["last"]["errors"]


async def test_each_rule_runs_on_one_process_under_the_schedulers_lease(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy], tmp_path: Path
) -> None:
    """Two replicas (two services on one store and coordinator): the sync job runs on the lease's
    holder only; the cache's expiry job is scheduled beside it."""
    up = make_upstream()
    async with up.client() as c:
        await push(c, "library/web", "1.27.0", seed="web", sizes=(10_000,))
    storage = {"filesystem": {"rootdirectory": str(tmp_path / "store")}}
    extra = {"proxy": {"sync": [{"repositories": ["docker.io/library/web"], "interval": "1h"}]}}
    replicas = [make_proxy({"docker.io": (up, {})}, extra, storage=storage) for _ in range(2)]
    schedulers = []
    for i, replica in enumerate(replicas):
        found = tasks(replica.services.proxy, replica.services.config)  # type: ignore[arg-type]
        assert [t.name for t in found] == ["proxy-cache", "proxy-sync-0"]
        assert 1.0 <= found[1].first_delay <= 60.0
        jobs = [Job(t.name, t.interval, 0.0, t.run) for t in found]
        scheduler = Scheduler(replica.services.coordinator, jobs, holder=f"replica-{i}")
        await scheduler.schedule()
        schedulers.append((scheduler, jobs))
    ran = [await s.step(jobs[1]) for s, jobs in schedulers]
    assert ran == [True, False]  # the second replica does not hold the lease
    assert up.count("GET", "/manifests/1.27.0") == 1
    assert [await s.step(jobs[1]) for s, jobs in schedulers] == [False, False]  # due again in 1h
    saved = await replicas[1].services.driver.get_content(
        "/docker/registry/v2/_dockyard/proxy-sync/rule-0.json"
    )
    assert json.loads(saved)["last"]["state"] == "ok"
    for s, _ in schedulers:
        await s.stop()


def test_the_app_schedules_the_proxy_jobs_unless_read_only(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy]
) -> None:
    up = make_upstream()
    extra = {"proxy": {"sync": [{"repositories": ["docker.io/library/web"]}]}}
    proxy = make_proxy({"docker.io": (up, {})}, extra)
    app = build_app(proxy.services)
    names = [j.name for j in _scheduler_of(app).jobs]
    assert "proxy-cache" in names and "proxy-sync-0" in names
    read_only = make_proxy(
        {"docker.io": (up, {})}, {**extra, "storage": {"maintenance": {"readonly": {"enabled": True}}}}
    )
    assert [j.name for j in _scheduler_of(build_app(read_only.services)).jobs] == []


def _scheduler_of(app: object) -> Scheduler:
    """Walk the middleware chain down to the registry app's scheduler."""
    seen = app
    for _ in range(20):
        scheduler = getattr(seen, "scheduler", None)
        if isinstance(scheduler, Scheduler):
            return scheduler
        seen = getattr(seen, "app", None) or getattr(seen, "inner", None)
    raise AssertionError("no scheduler found")
