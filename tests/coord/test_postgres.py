"""The PostgreSQL coordinator passes the shared suite against a real server; its own guarantees too."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from dockyard.coord.postgres import PostgresCoordinator, lock_key
from dockyard.coord.schema import current_version, migrate, migrations
from dockyard.errors import LockBusy, LockLost
from dockyard.testing.coord_suite import CoordinatorSuite, ManualClock


class TestPostgresCoordinator(CoordinatorSuite):
    @pytest.fixture
    def coordinator(self, dsn: str, clock: ManualClock) -> PostgresCoordinator:
        return PostgresCoordinator(dsn, clock=clock)

    @pytest.fixture
    def peer(self, dsn: str, clock: ManualClock) -> PostgresCoordinator:
        return PostgresCoordinator(dsn, clock=clock)


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_locks_die_with_the_holders_connection(dsn: str) -> None:
    """A replica that crashed (its connection gone) leaves no stale lock behind; and a holder
    whose connection broke while it held the lock is told so when its section ends (LockLost),
    instead of finishing as if nobody could have run beside it."""
    a, b = PostgresCoordinator(dsn), PostgresCoordinator(dsn)
    try:
        with pytest.raises(LockLost, match="'gc' was lost while it was held"):
            async with a.lock("gc"):
                await _kill_holder_and_take(a, b, dsn, "gc", shared=False)
        async with a.lock("gc", wait=False):  # a new connection: the lock is held again
            pass
    finally:
        await a.close()
        await b.close()


async def test_a_shared_holder_whose_connection_broke_is_told(dsn: str) -> None:
    """Pushes hold the collection lock shared; one whose lock connection broke mid-section (so a
    collection elsewhere could take the lock exclusively) fails with LockLost, as does every other
    holder of this process sharing that connection; an untouched section confirms quietly."""
    a, b = PostgresCoordinator(dsn), PostgresCoordinator(dsn)
    try:
        async with a.lock("gc", shared=True):
            pass

        async def section(kill: bool) -> None:
            async with a.lock("gc", shared=True):
                if kill:
                    await _kill_holder_and_take(a, b, dsn, "gc", shared=True)
                else:
                    await asyncio.sleep(0.2)

        results = await asyncio.gather(section(True), section(False), return_exceptions=True)
        assert [type(r) for r in results] == [LockLost, LockLost]
        async with a.lock("gc", shared=True):
            pass
    finally:
        await a.close()
        await b.close()


async def test_a_section_ends_in_one_round_trip_that_is_also_the_check(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A section's end is one statement: the unlock, whose answer is the fencing check (true only
    in the session that took the lock). A shared holder whose neighbours still hold the lock
    checks alone. A lock this session no longer holds when the section ends is LockLost."""
    coord = PostgresCoordinator(dsn)
    sent: list[str] = []
    execute = psycopg.AsyncConnection.execute

    async def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(bytes(query).decode() if isinstance(query, bytes) else str(query))
        return await execute(self, query, *args, **kwargs)

    try:
        async with coord.lock("warm-up"):
            pass
        monkeypatch.setattr(psycopg.AsyncConnection, "execute", counted)
        async with coord.lock("x"):
            pass
        assert [q.split("(")[0] for q in sent] == ["SELECT pg_try_advisory_lock", "SELECT pg_advisory_unlock"]
        sent.clear()
        async with coord.lock("s", shared=True), coord.lock("s", shared=True):
            pass
        assert [q.split("(")[0] for q in sent] == [
            "SELECT pg_try_advisory_lock_shared",
            "SELECT 1",
            "SELECT pg_advisory_unlock_shared",
        ]
        with pytest.raises(LockLost, match="'y' was lost"):
            async with coord.lock("y"):
                assert coord._lock_conn is not None
                await coord._lock_conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key("y"),))
        async with coord.lock("y", wait=False):  # nothing is left held
            pass
    finally:
        await coord.close()


async def _kill_holder_and_take(
    a: PostgresCoordinator, b: PostgresCoordinator, dsn: str, name: str, *, shared: bool
) -> None:
    """End the backend of ``a``'s lock connection, as a database restart or a network cut would,
    then show ``b`` (another replica) taking exclusively the lock ``a`` believes it holds."""
    with pytest.raises(LockBusy):
        async with b.lock(name, wait=False):
            pass
    conn = a._shared[name][0] if shared else a._lock_conn
    assert conn is not None
    backend = conn.info.backend_pid
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        for _ in range(1000):  # the backend exits shortly after the signal
            cursor = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend,))
            row = await cursor.fetchone()
            if row is not None and row[0] == 0:
                break
            await asyncio.sleep(0.005)
    async with b.lock(name, wait=False):
        pass


async def test_the_database_clock_by_default(dsn: str) -> None:
    coord = PostgresCoordinator(dsn)
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            cursor = await conn.execute("SELECT extract(epoch from now())")
            row = await cursor.fetchone()
        assert row is not None
        await coord.referenced(["k"])
        (at,) = await coord.last_referenced(["k"])
        assert at is not None and at >= float(row[0])
        assert await coord.now() >= at
    finally:
        await coord.close()


async def test_migrations_are_versioned_locked_and_idempotent(dsn: str) -> None:
    latest = migrations()[-1].version
    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(applied, key=len) == [[], [], [], [m.version for m in migrations()]]
        assert await migrate(conns[0]) == []
        assert await current_version(conns[0]) == latest
        cursor = await conns[0].execute("SELECT count(*) FROM schema_migrations")
        row = await cursor.fetchone()
        assert row is not None and row[0] == len(migrations())
    finally:
        for c in conns:
            await c.close()


async def test_a_fresh_database_has_no_schema_until_first_use(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        assert await current_version(conn) == 0
        coord = PostgresCoordinator(dsn)
        try:
            await coord.bump("catalog")
        finally:
            await coord.close()
        assert await current_version(conn) == migrations()[-1].version


def test_the_cli_migrates_and_says_what_it_applied(
    dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dockyard.cli.main import main

    monkeypatch.setenv("REGISTRY_DATABASE_DSN", dsn)
    monkeypatch.setenv("REGISTRY_STORAGE_INMEMORY", "{}")
    latest = migrations()[-1].version
    assert main(["db", "migrate"]) == 0
    every = ", ".join(str(m.version) for m in migrations())
    assert capsys.readouterr().out.strip() == f"migrations applied: {every}; schema version {latest}"
    assert main(["db", "migrate"]) == 0
    assert capsys.readouterr().out.strip() == f"migrations applied: none; schema version {latest}"
    monkeypatch.delenv("REGISTRY_DATABASE_DSN")
    assert main(["db", "migrate"]) == 2
    assert "database.dsn" in capsys.readouterr().err


async def test_the_registry_pushes_and_collects_with_postgres_coordinating(dsn: str) -> None:
    """End to end on the model: uploads, a manifest, a collection, all locks, records, sessions and
    liveness in PostgreSQL (by an injected clock, so 'an hour later' needs no waiting)."""
    import json
    import time
    from collections.abc import AsyncIterator

    from dockyard.config import parse_config
    from dockyard.oci.digest import Digest
    from dockyard.storage.drivers.memory import MemoryDriver
    from dockyard.storage.gc import GCOptions, collect
    from dockyard.storage.registry import Registry

    assert parse_config({"storage": {"inmemory": {}}, "database": {"dsn": dsn}}).database.dsn == dsn
    clock = ManualClock(time.time())
    coordinator = PostgresCoordinator(dsn, clock=clock)
    registry = Registry(MemoryDriver(), coordinator=coordinator)

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async def blob(data: bytes) -> dict[str, object]:
        upload = await registry.uploads.start("app")
        await registry.uploads.append("app", upload, one(data[:1]))
        assert (await coordinator.get_session(upload)) is not None
        await registry.uploads.finish("app", upload, Digest.of(data), one(data[1:]))
        assert (await coordinator.get_session(upload)) is None
        return {"mediaType": "application/octet-stream", "digest": str(Digest.of(data)), "size": len(data)}

    try:
        config, layer = await blob(b'{"os": "linux"}'), await blob(b"kept layer")
        await blob(b"orphan")
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": [layer],
            }
        ).encode()
        await registry.put_manifest("app", "v1", body, "application/vnd.oci.image.manifest.v1+json")
        fresh = await collect(registry, GCOptions(grace_seconds=3600))
        assert fresh.blobs_deleted == [] and fresh.kept_recent == 1  # the orphan is younger than an hour
        clock.advance(3601)
        report = await collect(registry, GCOptions(grace_seconds=3600))
        assert [b["digest"] for b in report.blobs_deleted] == [str(Digest.of(b"orphan"))]
        assert await coordinator.last_referenced([f"blob:{Digest.of(b'orphan')}"]) == [None]  # forgotten
        assert await registry.blobs.size_global(Digest.of(b"kept layer")) == len(b"kept layer")
    finally:
        await coordinator.close()


async def test_the_pool_reconnects_within_a_second_of_the_database_coming_back() -> None:
    """After an outage long enough for psycopg_pool's own backoff to reach 16 s between
    attempts, the first request after the database is back is served, not answered 503 while
    the pool sleeps (the uncapped backoff fails this: its next attempt comes about 14 s after
    the restart, past the request's 5 s wait). A server of its own: this one is stopped."""
    from dockyard.coord.postgres import POOL_TIMEOUT, RECONNECT_MAX_DELAY, Reconnecting
    from dockyard.errors import DatabaseUnavailable
    from dockyard.testing.postgres import PostgresServer, find_bin

    attempt = Reconnecting(timeout=300.0)
    for _ in range(10):
        attempt.update_delay(0.0)
        assert attempt.delay <= RECONNECT_MAX_DELAY
    bin_dir = find_bin()
    assert bin_dir is not None
    server = PostgresServer(bin_dir).start()
    coordinator = PostgresCoordinator(server.dsn())
    try:
        await coordinator.now()
        server.halt()
        loop = asyncio.get_running_loop()
        down_since = loop.time()
        with pytest.raises(DatabaseUnavailable):  # the pool finds its connection broken
            await coordinator.now()
        # psycopg_pool's own attempts would come at 1, 3, 7, 15 and 31 s (±10 %) from here:
        # back after 16.6 s, the database would wait for the one near 31 s.
        await asyncio.sleep(max(0.0, 16.6 - (loop.time() - down_since)))
        server.resume()
        assert POOL_TIMEOUT > RECONNECT_MAX_DELAY + 1.0
        await coordinator.now()
    finally:
        await coordinator.close()
        server.stop()
