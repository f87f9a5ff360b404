"""Replica liveness: records in the store (and the database), the refusal to share a store
without a database, and stale records that block nobody. Clocks are injected."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from dockyard.coord.postgres import PostgresCoordinator
from dockyard.storage.drivers import create_driver
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.replicas import (
    BEAT_SECONDS,
    FRESH_SECONDS,
    HOST_ENV,
    RECORDS,
    Heartbeat,
    ReplicaConflict,
    ReplicaRecord,
    claim,
    database_beat,
    read_all,
    remove,
    this_replica,
    write,
)
from tests.servers.dockyard import LiveRegistry

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.at = 1_700_000_000.0

    async def __call__(self) -> float:
        return self.at


@pytest.fixture
def store(tmp_path: Path) -> CheckedDriver:
    return create_driver("filesystem", {"rootdirectory": str(tmp_path / "store")}, redirect=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def other_machine(*, database: bool, beat: float) -> ReplicaRecord:
    return ReplicaRecord("elsewhere0001", "other-machine", 4242, beat - 60, beat, database)


async def test_a_replica_without_a_database_refuses_a_store_another_serves(store: CheckedDriver) -> None:
    clock = Clock()
    await write(store, other_machine(database=False, beat=clock.at - 5))
    me = this_replica(database=False, now=0.0)
    with pytest.raises(ReplicaConflict) as refused:
        await claim(store, me, clock, machine_local=True)
    message = str(refused.value)
    assert "refusing to start" in message and "other-machine" in message and "pid 4242" in message
    assert "database.dsn" in message and "last heartbeat 5 s ago" in message
    assert [r.id for r in await read_all(store)] == ["elsewhere0001"]  # its own record withdrawn
    # With a database it is refused too: the other replica would not see its locks.
    with pytest.raises(ReplicaConflict, match="without a database"):
        await claim(store, this_replica(database=True, now=0.0), clock, machine_local=True)


async def test_a_stale_heartbeat_blocks_nobody(store: CheckedDriver) -> None:
    clock = Clock()
    await write(store, other_machine(database=False, beat=clock.at))
    clock.at += FRESH_SECONDS  # the other replica stopped beating that long ago
    mine = await claim(store, this_replica(database=False, now=0.0), clock, machine_local=True)
    assert mine.beat == clock.at
    assert {r.id for r in await read_all(store)} == {"elsewhere0001", mine.id}


async def test_replicas_with_a_database_start_in_any_order(store: CheckedDriver) -> None:
    clock = Clock()
    await write(store, other_machine(database=True, beat=clock.at))
    await claim(store, this_replica(database=True, now=0.0), clock, machine_local=False)


async def test_this_machines_processes_are_one_replica_on_the_filesystem(store: CheckedDriver) -> None:
    """Another ``dockyard serve`` of this machine shares the flock coordinator: not a conflict on
    the filesystem; on an object store without a database (memory coordinator) it is. A record of
    this machine whose process has ended never counts."""
    clock = Clock()
    sibling = this_replica(database=False, now=clock.at)
    await write(store, sibling)  # this very process: alive
    await claim(store, this_replica(database=False, now=0.0), clock, machine_local=True)
    with pytest.raises(ReplicaConflict):
        await claim(store, this_replica(database=False, now=0.0), clock, machine_local=False)
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = ReplicaRecord("ended", sibling.host, int(ended.stdout), clock.at, clock.at, False)
    await store.delete_many([RECORDS])
    await write(store, dead)
    await claim(store, this_replica(database=False, now=0.0), clock, machine_local=False)


async def test_the_heartbeat_goes_to_the_store_and_the_database(store: CheckedDriver, dsn: str) -> None:
    clock = Clock()
    coordinator = PostgresCoordinator(dsn, clock=lambda: clock.at)
    sleeps: list[float] = []
    try:
        me = this_replica(database=True, now=clock.at, replica_id="r1")
        beat = Heartbeat(store, me, coordinator.now, database_beat(coordinator))
        await beat.beat()
        clock.at += BEAT_SECONDS
        await beat.beat()
        assert [(r.id, r.beat) for r in await read_all(store)] == [("r1", clock.at)]
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            row = await (await conn.execute("SELECT id, beat_at FROM replicas")).fetchone()
        assert row == ("r1", clock.at)  # the coordinator's clock, not this machine's
        await remove(store, "r1", coordinator)  # a clean stop's goodbye
        assert await read_all(store) == []
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            assert await (await conn.execute("SELECT id FROM replicas")).fetchall() == []
        await write(store, me)

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 2:
                raise KeyboardInterrupt  # leave the loop after two rounds

        with pytest.raises(KeyboardInterrupt):
            await Heartbeat(store, me, coordinator.now, sleep=sleep)._run()
        assert sleeps == [BEAT_SECONDS, BEAT_SECONDS]
    finally:
        await coordinator.close()


@pytest.mark.live
def test_a_second_serve_without_a_database_refuses_to_start(tmp_path: Path) -> None:
    """Two ``dockyard serve`` on one store, the second as another machine (``DOCKYARD_REPLICA_HOST``):
    the first beats, the second exits with the reason before starting any worker."""
    with LiveRegistry(tmp_path / "a", root=tmp_path / "store", workers=1) as first:
        assert first.proc is not None
        parent = first.proc.pid
        records = tmp_path / "store" / RECORDS.lstrip("/")
        deadline = time.monotonic() + 60  # a bound for a hung worker, not a timing assertion
        beaten = None
        while beaten is None and time.monotonic() < deadline:  # the worker beats at its start
            found = [json.loads(p.read_text()) for p in records.glob("*.json")]
            beaten = next((r for r in found if r["pid"] != parent), None)
            time.sleep(0.05)
        assert beaten is not None and len(found) == 1  # the worker beats under its serve's record
        config = tmp_path / "b.yml"
        config.write_text(
            yaml.safe_dump({"version": 0.1, "http": {"addr": f"127.0.0.1:{free_port()}"},
                            "storage": {"filesystem": {"rootdirectory": str(tmp_path / "store")}}})
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env[HOST_ENV] = "machine-b"
        dockyard = Path(sys.executable).with_name("dockyard")
        second = subprocess.run(
            [str(dockyard), "serve", "--config", str(config), "--workers", "1"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert "refusing to start" in second.stderr and "database.dsn" in second.stderr
    # Stopped cleanly, the first removed its record: a replacement elsewhere starts at once.
    assert list(records.glob("*.json")) == []
    with LiveRegistry(
        tmp_path / "c", root=tmp_path / "store", workers=1, env={HOST_ENV: "machine-b"}
    ) as third:
        assert httpx.get(f"{third.url}/v2/").status_code == 200


def test_a_store_that_cannot_be_checked_stops_a_replica_without_a_database(tmp_path: Path, dsn: str) -> None:
    from dockyard.config import ConfigError, parse_config
    from dockyard.server import claim_store

    root = tmp_path / "not-a-directory"
    root.write_text("a file where the store should be")
    storage = {"filesystem": {"rootdirectory": str(root)}}
    with pytest.raises(ConfigError, match="cannot check the store for other replicas"):
        claim_store(parse_config({"storage": storage}))
    # With a database it starts (it can only collide with a replica that has none), and beats later.
    assert claim_store(parse_config({"storage": storage, "database": {"dsn": dsn}}))
    # A read-only replica writes nothing, so it checks nothing.
    readonly = {**storage, "maintenance": {"readonly": {"enabled": True}}}
    assert claim_store(parse_config({"storage": readonly}))
