"""Which replicas serve one store: heartbeats, and the refusal to share a store uncoordinated.

Every ``dockyard serve`` is one replica: one id, made by the serving parent and handed to its
workers, so the workers of one ``serve`` share one record. Each worker writes the record every
``BEAT_SECONDS`` into the store (``_dockyard/replicas/<id>.json``, through the driver, so every
machine on an object store sees it); with ``database.dsn`` the beat also goes into the
``replicas`` table, and every time in the records is the coordinator's clock.

Before its workers start, a replica writes its record and reads the others'. Without a
database it refuses to start when another replica's record is fresh (a beat within
``FRESH_SECONDS``): two replicas coordinating only through their own machine's files (or memory)
would each take locks and upload sessions the other cannot see, and one's garbage collection
could delete what the other is writing. Records of its own machine do not count on the
filesystem driver (the processes of one machine share the flock coordinator), nor do records
whose process has ended. With a database, replicas start in any order; only a fresh replica
*without* one refuses them (it would not see their locks). A record that stops beating goes
stale by itself: a replica killed without a chance to clean up blocks nobody for longer than
``FRESH_SECONDS``; one stopped cleanly removes its record (:func:`release`, run by the serving
parent after its last worker ended), so a replacement on another machine or container starts at
once. A read-only replica (``storage.maintenance.readonly``) writes nothing, so it
neither keeps a record nor needs to check: it cannot collide with anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from dockyard.config import Config, ConfigError
from dockyard.errors import PathNotFound
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

if TYPE_CHECKING:
    from dockyard.coord.postgres import PostgresCoordinator

log = logging.getLogger("dockyard.replicas")

RECORDS = f"{paths.ROOT}/_dockyard/replicas"
BEAT_SECONDS = 10.0
FRESH_SECONDS = 30.0
FORGET_SECONDS = 7 * 86400.0  # records this old are deleted when a replica starts
REPLICA_ID_ENV = "DOCKYARD_REPLICA_ID"
# The machine name a replica reports (default: the host name). Replicas reporting one name are
# taken to be one machine's processes.
HOST_ENV = "DOCKYARD_REPLICA_HOST"
Now = Callable[[], Awaitable[float]]


class ReplicaConflict(ConfigError):
    """Another live replica serves this store, and the two would not be coordinated (a start-up
    refusal the command line prints like a configuration error: the fix is configuration)."""


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    id: str
    host: str
    pid: int
    started: float
    beat: float
    database: bool  # coordinated through database.dsn

    @property
    def path(self) -> str:
        return f"{RECORDS}/{self.id}.json"


def this_replica(*, database: bool, now: float, replica_id: str | None = None) -> ReplicaRecord:
    host = os.environ.get(HOST_ENV) or socket.gethostname()
    return ReplicaRecord(replica_id or uuid.uuid4().hex, host, os.getpid(), now, now, database)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def write(driver: CheckedDriver, record: ReplicaRecord) -> None:
    await driver.put_content(record.path, json.dumps(asdict(record)).encode())


async def read_all(driver: CheckedDriver) -> list[ReplicaRecord]:
    tree = await driver.list_tree(RECORDS, depth=1)
    found = []
    for name in sorted(tree.get("", [])):
        if not name.endswith(".json"):
            continue
        try:
            data = json.loads(await driver.get_content(f"{RECORDS}/{name}"))
            found.append(ReplicaRecord(**data))
        except PathNotFound:
            continue  # gone since the listing
        except (ValueError, TypeError):
            continue  # half-written or foreign: not a replica's record
    return found


def conflicts(
    me: ReplicaRecord, others: list[ReplicaRecord], now: float, *, machine_local: bool
) -> list[ReplicaRecord]:
    """The live replicas ``me`` would share the store with uncoordinated. ``machine_local``: the
    coordinator without a database reaches every process of this machine (the flock one)."""
    found = []
    for other in others:
        if other.id == me.id or now - other.beat >= FRESH_SECONDS:
            continue
        if me.database and other.database:
            continue  # both coordinated through the database
        if other.host == me.host:
            if not _alive(other.pid):
                continue  # this machine's replica that ended without cleaning up
            if machine_local and not me.database and not other.database:
                continue  # this machine's processes share the local coordinator
        found.append(other)
    return found


def refusal(me: ReplicaRecord, found: list[ReplicaRecord], now: float) -> str:
    other = found[0]
    ago = max(0, round(now - other.beat))
    who = f"replica {other.id[:12]} on {other.host} (pid {other.pid}, last heartbeat {ago} s ago)"
    if me.database:
        why = f"{who} serves this store without a database, so it would not see this replica's locks"
    else:
        why = f"{who} serves this store, and this replica has no database to coordinate with it"
    return (
        f"refusing to start: {why}. Replicas sharing a store must all set database.dsn "
        "(REGISTRY_DATABASE_DSN) to one PostgreSQL database; otherwise uploads, locks and garbage "
        "collection would collide. Stop the other replica (its record goes stale "
        f"{FRESH_SECONDS:.0f} s after its last heartbeat) or configure the database on every replica."
    )


async def claim(driver: CheckedDriver, me: ReplicaRecord, now: Now, *, machine_local: bool) -> ReplicaRecord:
    """Write this replica's record, then refuse (ReplicaConflict, record removed) if another live
    replica would share the store uncoordinated. Writing first means two replicas starting at
    once see each other (both refuse, rather than both start). Old dead records are dropped."""
    me = replace(me, beat=await now(), started=await now())
    await write(driver, me)
    others = await read_all(driver)
    current = await now()
    found = conflicts(me, others, current, machine_local=machine_local)
    if found:
        await driver.delete_many([me.path])
        raise ReplicaConflict(refusal(me, found, current))
    old = [o.path for o in others if o.id != me.id and current - o.beat >= FORGET_SECONDS]
    if old:
        await driver.delete_many(old)
    return me


async def remove(driver: CheckedDriver, replica_id: str, database: PostgresCoordinator | None) -> None:
    """Delete a replica's record from the store (and the database's ``replicas`` table)."""
    await driver.delete_many([f"{RECORDS}/{replica_id}.json"])
    if database is not None:
        await database.fetch_all("DELETE FROM replicas WHERE id = %(id)s RETURNING id", id=replica_id)


def release(config: Config, replica_id: str) -> None:
    """A cleanly stopped replica's goodbye: remove its record, so another replica (a replacement
    container on the same store, with another host name) need not wait ``FRESH_SECONDS`` for it to
    go stale. The serving parent calls this once every worker has ended, so no beat rewrites it.
    A store or database that does not answer now only leaves the record to go stale, as a killed
    replica's does."""
    if config.storage.inmemory is not None or config.storage.maintenance.readonly.enabled:
        return  # no record was written (``server.claim_store``)
    from dockyard.storage.drivers import create_driver

    async def run() -> None:
        name, params = config.storage.driver()
        driver = create_driver(name, params, redirect=False)
        database = None
        if config.database.dsn:
            from dockyard.coord.postgres import PostgresCoordinator

            database = PostgresCoordinator(config.database.dsn)
        try:
            await remove(driver, replica_id, database)
        finally:
            if database is not None:
                await database.close()

    try:
        asyncio.run(run())
    except Exception as exc:
        log.warning("could not remove this replica's record", extra={"error": str(exc)[:300]})


class Heartbeat:
    """A worker's beat for its replica's record, every ``BEAT_SECONDS`` until stopped.
    ``database`` also records the beat in the database (``replicas`` table)."""

    def __init__(
        self,
        driver: CheckedDriver,
        me: ReplicaRecord,
        now: Now,
        database: Callable[[ReplicaRecord], Awaitable[None]] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.driver = driver
        self.me = me
        self.now = now
        self.database = database
        self.sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        self.me = replace(self.me, beat=await self.now())
        await write(self.driver, self.me)
        if self.database is not None:
            await self.database(self.me)

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # the store or database is down: try again next beat
                log.warning("replica heartbeat failed", extra={"error": str(exc)[:200]})
            await self.sleep(BEAT_SECONDS)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def database_beat(coordinator: PostgresCoordinator) -> Callable[[ReplicaRecord], Awaitable[None]]:
    """Record a beat in the ``replicas`` table, by the database's clock."""

    from dockyard.coord.postgres import NOW

    async def beat(record: ReplicaRecord) -> None:
        await coordinator.fetch_all(
            "INSERT INTO replicas (id, host, pid, started_at, beat_at)"
            f" VALUES (%(id)s, %(host)s, %(pid)s, %(started)s, {NOW})"
            " ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at RETURNING id",
            id=record.id,
            host=record.host,
            pid=record.pid,
            started=record.started,
        )

    return beat
