"""The derived listing index on real PostgreSQL and the filesystem store: two instances writing
through it stay in step with the store; reads drop what the store lost; reconcile and rebuild
bring in what other tools wrote; a reconcile never undoes a change made while it walked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from dockyard.config import parse_config
from dockyard.coord.index import PostgresIndexRows
from dockyard.coord.postgres import PostgresCoordinator
from dockyard.maintenance import jobs_from_config
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.testing.coord_suite import ManualClock
from tests.api.helpers import push_image
from tests.index.helpers import instance, listed, tag_behind_the_back, truth

pytestmark = pytest.mark.anyio


def _storage(tmp_path: Path) -> dict[str, Any]:
    return {"filesystem": {"rootdirectory": str(tmp_path / "root"), "fsync": False}}


async def two_instances_stay_in_step(storage: dict[str, Any], dsn: str) -> None:
    """Pushes and deletes through two instances; both list what the store holds, page by page.
    (Shared with the SeaweedFS run in tests/s3.)"""
    a, b = instance(storage, dsn), instance(storage, dsn)
    try:
        d1, _ = await push_image(a.client, "team/app", "v1", seed="1")
        await push_image(b.client, "team/app", "v2", seed="2")
        await push_image(a.client, "team/app", "v3", seed="2")
        await push_image(b.client, "other", "latest", seed="3")
        d4, body = await push_image(a.client, "bydigest", None, seed="4")
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        r = await b.client.put(f"/v2/bydigest/manifests/{d4}?tag=one&tag=two", content=body, headers=headers)
        assert r.status_code == 201, r.text  # two tags in one push
        d5, _ = await push_image(b.client, "gone", "x", seed="5")
        for client in (a.client, b.client):
            assert await listed(client) == await truth(a.services)
        assert (await listed(b.client)).repositories == {"team/app", "other", "bydigest", "gone"}

        assert (await b.client.delete("/v2/team/app/manifests/v2")).status_code == 202
        assert (await a.client.delete(f"/v2/team/app/manifests/{d1}")).status_code == 202
        assert (await a.client.delete(f"/v2/gone/manifests/{d5}")).status_code == 202
        await b.services.registry.remove_if_empty("gone")  # what a collection does
        await a.services.registry.delete_repository("other")
        expected = await truth(b.services)
        assert expected.tags == {("team/app", "v3"), ("bydigest", "one"), ("bydigest", "two")}
        assert expected.repositories == {"team/app", "bydigest"}
        for client in (a.client, b.client):
            assert await listed(client, n=1) == expected
            r = await client.get("/v2/other/tags/list")
            assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        index = a.services.registry.index
        assert index is not None
        _, _, diff = await index.difference()
        assert diff.empty
    finally:
        await a.close()
        await b.close()


async def test_two_instances_list_what_the_store_holds(tmp_path: Path, dsn: str) -> None:
    await two_instances_stay_in_step(_storage(tmp_path), dsn)


async def test_listings_answer_from_the_index(tmp_path: Path, dsn: str) -> None:
    """A row the store never had is listed: the listing came from the index, not a walk."""
    a = instance(_storage(tmp_path), dsn)
    try:
        await push_image(a.client, "real", "v1")
        index = a.services.registry.index
        assert index is not None
        await index.rows.put("phantom", ["t"])
        assert (await a.client.get("/v2/_catalog")).json()["repositories"] == ["phantom", "real"]
        assert (await a.client.get("/v2/phantom/tags/list")).json()["tags"] == ["t"]
        report = await index.reconcile()
        assert (report.repositories_dropped, report.tags_dropped) == (1, 1)
        assert (await a.client.get("/v2/_catalog")).json()["repositories"] == ["real"]
    finally:
        await a.close()


async def test_a_tag_written_behind_the_back_appears_after_reconcile(tmp_path: Path, dsn: str) -> None:
    a, b = instance(_storage(tmp_path), dsn), instance(_storage(tmp_path), dsn)
    try:
        digest, _ = await push_image(a.client, "app", "v1")
        await push_image(a.client, "base", "v1", seed="b")
        await tag_behind_the_back(a.services, "app", "v2", digest)
        # A new repository by another tool: its first manifest and tag.
        await a.services.registry.manifests.put(
            "newrepo", Digest.parse(digest), *await _manifest(a, "app", digest), tags=["t"]
        )
        assert (await b.client.get("/v2/app/tags/list")).json()["tags"] == ["v1"]
        assert (await b.client.get("/v2/_catalog")).json()["repositories"] == ["app", "base"]
        # Pulling it reads the store: it is there, whatever the index says.
        assert (await b.client.get("/v2/app/manifests/v2")).status_code == 200
        # A repository the index knows no tag of is listed from the store, and filled in.
        assert (await b.client.get("/v2/newrepo/tags/list")).json()["tags"] == ["t"]

        index = b.services.registry.index
        assert index is not None
        report = await index.reconcile()
        assert (report.repositories_added, report.tags_added) == (0, 1)  # newrepo: filled on read
        assert await listed(a.client) == await truth(a.services)
        assert (await index.reconcile()).tags_added == 0  # idempotent
    finally:
        await a.close()
        await b.close()


async def _manifest(inst: Any, name: str, digest: str) -> tuple[bytes, Any]:
    from dockyard.oci.manifest import parse_manifest

    _, media_type, body = await inst.services.registry.get_manifest(name, Digest.parse(digest))
    return body, parse_manifest(body, media_type)


async def test_reads_drop_entries_the_store_lost(tmp_path: Path, dsn: str) -> None:
    a, b = instance(_storage(tmp_path), dsn), instance(_storage(tmp_path), dsn)
    try:
        for tag in ("v1", "v2", "v3"):
            await push_image(a.client, "lib/app", tag)
        await push_image(a.client, "lone", "only")
        driver = a.services.driver
        for tag in ("v1", "v2"):  # removed by another tool
            await driver.delete(paths.tag_dir("lib/app", tag))
        await driver.delete(paths.repository("lone"))
        assert (await b.client.get("/v2/lib/app/tags/list")).json()["tags"] == ["v1", "v2", "v3"]

        r = await b.client.get("/v2/lib/app/manifests/v1")  # a pull reads the store
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert (await a.client.get("/v2/lib/app/tags/list")).json()["tags"] == ["v2", "v3"]
        # A Hub listing describes each row from the store, and drops what it found gone.
        r = await b.client.get("/v2/repositories/lib/app/tags/", params={"ordering": "name"})
        assert [t["name"] for t in r.json()["results"]] == ["v3"]
        assert (await a.client.get("/v2/lib/app/tags/list")).json()["tags"] == ["v3"]
        # A repository whose last listed tag is found gone leaves the catalog.
        assert (await b.client.get("/v2/lone/manifests/only")).status_code == 404
        assert (await a.client.get("/v2/_catalog")).json()["repositories"] == ["lib/app"]
        r = await a.client.delete("/v2/lib/app/manifests/v2")  # a delete of a tag already gone
        assert r.status_code == 404
        assert await listed(b.client) == await truth(b.services)
    finally:
        await a.close()
        await b.close()


async def test_a_missing_repository_leaves_the_index_on_read(tmp_path: Path, dsn: str) -> None:
    a = instance(_storage(tmp_path), dsn)
    try:
        await push_image(a.client, "ns/gone", "v1")
        index = a.services.registry.index
        assert index is not None
        await a.services.driver.delete(paths.repository("ns/gone"))
        assert (await a.client.get("/v2/repositories/ns/gone/")).status_code == 404  # Hub API
        assert await index.rows.repositories() == []
        await index.rows.put("ns/gone", [])
        r = await a.client.get("/v2/ns/gone/tags/list")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        assert await index.rows.repositories() == []
    finally:
        await a.close()


async def test_rebuild_after_the_tables_were_dropped(tmp_path: Path, dsn: str) -> None:
    a = instance(_storage(tmp_path), dsn)
    try:
        for name, tag in (("a", "1"), ("a", "2"), ("b/c", "x")):
            await push_image(a.client, name, tag, seed=name + tag)
        before = await listed(a.client)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("DROP TABLE index_tags, index_repositories")
        index = a.services.registry.index
        assert index is not None
        report = await index.rebuild()
        assert (report.repositories_added, report.tags_added) == (2, 3)
        assert await listed(a.client) == before == await truth(a.services)
    finally:
        await a.close()


async def test_a_reconcile_never_undoes_what_changed_while_it_walked(dsn: str) -> None:
    """Write-through changes stamped after the walk began win over what the walk saw."""
    clock = ManualClock()
    coordinator = PostgresCoordinator(dsn, clock=clock)
    rows = PostgresIndexRows(coordinator)
    try:
        await rows.put("r", ["old"])
        clock.advance(10)
        began = await rows.now()  # the walk begins; it sees "old" and "deleted", not "new"
        clock.advance(1)
        await rows.put("r", ["new", "new"])
        await rows.remove_tag("r", "deleted")  # a tombstone, though the index never listed it
        await rows.remove_tag("r", "old")
        counts = await rows.apply(
            add_repositories=["r"],
            drop_repositories=[],
            add_tags=[("r", "deleted"), ("r", "old")],
            drop_tags=[("r", "new")],
            before=began,
        )
        assert counts == (0, 0, 0, 0)
        assert await rows.tags("r") == ["new"]
        # A repository removed meanwhile gets no tags back from the walk.
        await rows.remove_repository("r")
        await rows.apply(
            add_repositories=["r"], drop_repositories=[], add_tags=[("r", "x")], drop_tags=[], before=began
        )
        assert await rows.repositories() == [] and await rows.tags("r") == []
        # Tombstones go once no walk can have begun before them.
        clock.advance(10)
        await rows.purge(await rows.now())
        assert await coordinator.statement("SELECT count(*) FROM index_tags") == [(0,)]
    finally:
        await coordinator.close()


async def test_the_scheduler_runs_the_reconcile(tmp_path: Path, dsn: str) -> None:
    a = instance(_storage(tmp_path), dsn, database={"index": {"reconcileinterval": "2m"}})
    try:
        digest, _ = await push_image(a.client, "app", "v1")
        await tag_behind_the_back(a.services, "app", "v2", digest)
        config, registry = a.services.config, a.services.registry
        jobs = {j.name: j for j in jobs_from_config(config, registry, a.services.coordinator)}
        assert jobs["index-reconcile"].interval == 120.0
        await jobs["index-reconcile"].run()
        assert (await a.client.get("/v2/app/tags/list")).json()["tags"] == ["v1", "v2"]
        for interval, expected in (("2m", ["index-reconcile"]), (0, [])):
            readonly = parse_config(
                {
                    "storage": {**_storage(tmp_path), "maintenance": {"readonly": {"enabled": True}}},
                    "database": {"dsn": dsn, "index": {"reconcileinterval": interval}},
                }
            )
            jobs_now = jobs_from_config(readonly, registry, a.services.coordinator)
            assert [j.name for j in jobs_now] == expected  # in read-only mode, only the index's
    finally:
        await a.close()


async def test_without_a_database_listings_walk_the_store(tmp_path: Path) -> None:
    a = instance(_storage(tmp_path), None)
    try:
        assert a.services.registry.index is None
        digest, _ = await push_image(a.client, "app", "v1")
        await tag_behind_the_back(a.services, "app", "v2", digest)
        assert (await a.client.get("/v2/app/tags/list")).json()["tags"] == ["v1", "v2"]
        config = a.services.config
        assert "index-reconcile" not in {
            j.name for j in jobs_from_config(config, a.services.registry, a.services.coordinator)
        }
    finally:
        await a.close()
