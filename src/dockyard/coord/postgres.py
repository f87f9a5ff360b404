"""The PostgreSQL coordinator: many processes on many machines (replicas on one object store).

- **Locks** are session advisory locks (``pg_advisory_lock[_shared]``, keyed by 64 bits of the
  name's SHA-256). They belong to a connection, so they die with it: a crashed replica leaves no
  stale lock (and, by the same token, they need a connection held for as long as they are held:
  no PgBouncer transaction pooling). Tries and the first shared holder of a name use one
  dedicated lock connection with non-blocking calls only; a holder that has to *wait* gets a
  connection of its own for the wait and the hold, so a blocked wait never stalls other locks'
  traffic. Inside the process, an :class:`~dockyard.coord.rwlock.RWLock` per name comes first:
  advisory locks are re-entrant per connection and would not exclude this process's own tasks.
  Shared holders of one process share one advisory lock and a count, like the flock locks.
- **Everything else** is rows (``coord/migrations``), written through a small connection pool
  in autocommit mode, stamped by the database's ``now()``: the one clock every replica shares.

``psycopg`` (``pip install 'dockyard[postgres]'``) is imported only when this module is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
    from psycopg_pool.base import AttemptWithBackoff
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("database.dsn needs the PostgreSQL client: pip install 'dockyard[postgres]'") from exc

from dockyard.coord.base import TOPIC_NAME, Clock, Part, UploadSession, check_name
from dockyard.coord.rwlock import RWLocks
from dockyard.coord.schema import migrate
from dockyard.errors import DatabaseUnavailable, LockBusy, LockLost

Conn = psycopg.AsyncConnection[Any]
_NOW = "coalesce(%(now)s::float8, extract(epoch from now()))"
NOW = _NOW  # the coordinator's clock in SQL, for the shared-state stores that query through it
_SESSION_COLUMNS = 'id, repository, "offset", started_at, updated_at, hash_state, multipart_id, parts'
# How long a request waits for a pooled connection before it is answered 503 (the database is
# down, or every connection is busy for that long).
POOL_TIMEOUT = 5.0
# The longest the pool waits between attempts to reconnect to a database that went away.
RECONNECT_MAX_DELAY = 1.0


def describe(dsn: str) -> str:
    """The database, as an error message names it: host, port and name, never the password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the database (PostgreSQL)"
    host, port, name = info.get("host", "localhost"), info.get("port", 5432), info.get("dbname", "")
    return f"the database (PostgreSQL {name} at {host}:{port})"


def lock_key(name: str) -> int:
    """The advisory lock key of a lock name: 64 bits of its SHA-256, as a signed bigint."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _session(row: Sequence[Any]) -> UploadSession:
    id_, repository, offset, started, updated, state, multipart_id, parts = row
    return UploadSession(
        id=id_,
        repository=repository,
        offset=int(offset),
        started_at=float(started),
        updated_at=float(updated),
        hash_state=bytes(state) if state is not None else None,
        multipart_id=multipart_id,
        parts=tuple(Part(int(n), str(e), int(s)) for n, e, s in parts or []),
    )


class Reconnecting(AttemptWithBackoff):
    """psycopg_pool's reconnection backoff, capped. Uncapped it doubles from 1 s (1, 2, 4, 8,
    16 s, … until its 5-minute reconnect timeout), so after a 16 s outage the next attempt could
    come 15 s after the database is back, and every request meanwhile waits out
    ``POOL_TIMEOUT`` and answers 503. A refused connection costs the database nothing, so the
    pool tries every ``RECONNECT_MAX_DELAY`` seconds instead."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_MAX_DELAY)


class _Pool(AsyncConnectionPool[Conn]):
    """The connection pool, reconnecting with :class:`Reconnecting`'s capped backoff. psycopg_pool
    offers no setting for the backoff, so the attempt it starts a reconnection with is ours
    (``tests/coord/test_postgres.py`` restarts a database to check this still takes effect)."""

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        if attempt is None:
            attempt = Reconnecting(timeout=self.reconnect_timeout)
        await super()._add_connection(attempt, growing=growing)


class Transaction:
    """Queries inside :meth:`PostgresCoordinator.transaction`, bound to its clock."""

    def __init__(self, conn: Conn, params: Any) -> None:
        self._conn = conn
        self._params = params

    async def fetch_one(self, sql: str, **params: Any) -> Any:
        cursor = await self._conn.execute(sql.encode(), self._params(**params))
        return await cursor.fetchone() if cursor.description is not None else None

    async def fetch_all(self, sql: str, **params: Any) -> list[Any]:
        cursor = await self._conn.execute(sql.encode(), self._params(**params))
        return await cursor.fetchall() if cursor.description is not None else []


def _lost(dsn: str, name: str) -> LockLost:
    return LockLost(
        f"the connection to {describe(dsn)} that held lock {name!r} was lost while it was"
        " held; the work done under it was not confirmed, retry"
    )


async def _answer(conn: Conn, sql: bytes, name: str) -> bool:
    """The boolean a lock function answers for ``name``'s key."""
    cursor = await conn.execute(sql, (lock_key(name),))
    row = await cursor.fetchone()
    return bool(row is not None and row[0])


class PostgresCoordinator:
    name = "postgres"

    def __init__(self, dsn: str, *, clock: Clock | None = None, pool_size: int = 8) -> None:
        """``clock`` replaces the database's ``now()`` (tests); by default the database decides."""
        self.dsn = dsn
        self.clock = clock
        self._pool = _Pool(
            dsn,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True},
            timeout=POOL_TIMEOUT,
            # A pooled connection is checked as it is handed out (one empty round trip), so after
            # the database restarts, no request gets a connection the server has already closed.
            check=AsyncConnectionPool.check_connection,
        )
        self._opened = False
        self._opening = asyncio.Lock()
        self._lock_conn: Conn | None = None
        self._lock_conn_guard = asyncio.Lock()
        self._local = RWLocks()
        self._shared: dict[str, tuple[Conn, int]] = {}
        self._shared_gate: dict[str, asyncio.Lock] = {}

    async def _ready(self) -> None:
        if not self._opened:
            async with self._opening:
                await self._open()

    async def _open(self) -> None:
        if self._opened:  # another task opened it while this one waited
            return
        await self._pool.open(wait=True)
        async with self._pool.connection() as conn:
            await migrate(conn)
        self._opened = True

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """A lost or refused connection is :class:`DatabaseUnavailable` (503), not a crash: the
        pool replaces broken connections, so the next request after the database is back works."""
        try:
            yield
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(f"{describe(self.dsn)} did not answer: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        with self._reaching():
            await self._ready()
            async with self._pool.connection() as conn:
                yield conn

    def _params(self, **params: Any) -> dict[str, Any]:
        return {"now": self.clock() if self.clock is not None else None, **params}

    async def _one(self, sql: str, **params: Any) -> Any:
        async with self._conn() as conn:
            cursor = await conn.execute(sql.encode(), self._params(**params))
            return await cursor.fetchone()

    async def _all(self, sql: str, **params: Any) -> list[Any]:
        async with self._conn() as conn:
            cursor = await conn.execute(sql.encode(), self._params(**params))
            return await cursor.fetchall()

    # -- queries for the shared-state stores (robots, keys, throttling, quotas, replicas) -------
    # They keep their tables in this database (``coord/migrations``) and use this pool and this
    # clock (``NOW`` in their SQL), so an injected test clock governs them too.

    async def fetch_one(self, sql: str, **params: Any) -> Any:
        """The first row of ``sql`` (None when there is none); ``%(now)s`` is bound for ``NOW``."""
        return await self._one(sql, **params)

    async def fetch_all(self, sql: str, **params: Any) -> list[Any]:
        return await self._all(sql, **params)

    @contextlib.asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        """One transaction; with ``lock``, holding that name's transaction advisory lock from
        the start (a writer that must be the only one, such as a key rotation)."""
        async with self._conn() as conn, conn.transaction():
            if lock is not None:
                await conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (lock_key(lock),))
            yield Transaction(conn, self._params)

    async def now(self) -> float:
        row = await self._one(f"SELECT {_NOW}")
        return float(row[0])

    # -- locks ---------------------------------------------------------------------------------

    async def _lock_connection(self) -> Conn:
        if self._lock_conn is None or self._lock_conn.closed or self._lock_conn.broken:
            await self._ready()
            self._lock_conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        return self._lock_conn

    async def _pg_acquire(self, name: str, shared: bool, wait: bool) -> Conn:
        suffix = "_shared" if shared else ""
        async with self._lock_conn_guard:
            for attempt in (1, 2):
                conn = await self._lock_connection()
                try:
                    cursor = await conn.execute(
                        f"SELECT pg_try_advisory_lock{suffix}(%s)".encode(), (lock_key(name),)
                    )
                    row = await cursor.fetchone()
                    break
                except psycopg.OperationalError:
                    # The server went away since this connection's last use (it restarted): the
                    # try took nothing, so it is made once more on a new connection.
                    await conn.close()
                    if attempt == 2:
                        raise
        if row is not None and row[0]:
            return conn
        if not wait:
            raise LockBusy(name)
        own = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        try:
            await own.execute(f"SELECT pg_advisory_lock{suffix}(%s)".encode(), (lock_key(name),))
        except BaseException:
            await own.close()  # also abandons the wait on the server
            raise
        return own

    async def _pg_release(self, name: str, shared: bool, conn: Conn, *, confirm: bool = False) -> None:
        """Release ``name``'s advisory lock held on ``conn``. ``confirm``: the section under it
        succeeded, so its end is also the fencing check (:meth:`_confirm`): the unlock answers
        true only in the session that took the lock, which therefore held it throughout; a
        broken connection or a false answer is :class:`LockLost`. One round trip for both."""
        held = False
        suffix = "_shared" if shared else ""
        unlock = f"SELECT pg_advisory_unlock{suffix}(%s)".encode()
        if conn is not self._lock_conn:  # a connection of its own: closing it releases the lock
            try:
                if confirm and not (conn.closed or conn.broken):
                    with contextlib.suppress(psycopg.Error):
                        held = await _answer(conn, unlock, name)
            finally:
                await conn.close()
        elif not (conn.closed or conn.broken):  # else the server released it with the connection
            async with self._lock_conn_guard:
                try:
                    held = await _answer(conn, unlock, name)
                except psycopg.Error:
                    await conn.close()  # lost: the server released every lock it held
        if confirm and not held:
            raise _lost(self.dsn, name)

    async def _acquire_shared(self, name: str, wait: bool) -> None:
        gate = self._shared_gate.setdefault(name, asyncio.Lock())
        async with gate:
            held = self._shared.get(name)
            if held is None:
                conn = await self._pg_acquire(name, True, wait)
                held = (conn, 0)
            self._shared[name] = (held[0], held[1] + 1)

    async def _release_shared(self, name: str, *, confirm: bool = False) -> None:
        gate = self._shared_gate[name]
        async with gate:
            conn, count = self._shared[name]
            if count > 1:
                self._shared[name] = (conn, count - 1)
                if confirm:  # others hold it still: the check alone
                    await self._confirm(name, conn)
                return
            del self._shared[name]
            await self._pg_release(name, True, conn, confirm=confirm)

    @contextlib.asynccontextmanager
    async def _hold(self, name: str, shared: bool, wait: bool) -> AsyncIterator[None]:
        async with self._local.hold(check_name(name), shared=shared, wait=wait):
            if shared:
                with self._reaching():
                    await self._acquire_shared(name, wait)
                try:
                    yield
                except BaseException:
                    await asyncio.shield(self._release_shared(name))
                    raise
                await asyncio.shield(self._release_shared(name, confirm=True))
                return
            with self._reaching():
                conn = await self._pg_acquire(name, False, wait)
            try:
                yield
            except BaseException:
                await asyncio.shield(self._pg_release(name, False, conn))
                raise
            await asyncio.shield(self._pg_release(name, False, conn, confirm=True))

    async def _confirm(self, name: str, conn: Conn) -> None:
        """Fencing, as far as a store that knows nothing of locks allows: the connection that holds
        ``name``'s advisory lock is still the live session that took it, checked after the
        section's work. A session keeps its advisory locks until it ends, so a connection that still
        answers has held the lock throughout; one that broke (the database restarted, a network cut,
        an administrator's ``pg_terminate_backend``) lost it at some moment, and the section may
        have overlapped an exclusive holder on another replica: :class:`LockLost`. One round trip
        per section, on the lock's own connection."""
        answered = False
        try:
            if not (conn.closed or conn.broken):
                if conn is self._lock_conn:
                    async with self._lock_conn_guard:
                        await conn.execute(b"SELECT 1")
                else:
                    await conn.execute(b"SELECT 1")
                answered = True
        except psycopg.Error:
            pass
        if not answered:
            raise _lost(self.dsn, name)

    def lock(
        self, name: str, *, shared: bool = False, wait: bool = True
    ) -> AbstractAsyncContextManager[None]:
        return self._hold(name, shared, wait)

    # -- sessions ------------------------------------------------------------------------------

    async def create_session(self, session_id: str, repository: str) -> UploadSession:
        row = await self._one(
            f"INSERT INTO upload_sessions (id, repository, started_at, updated_at)"
            f" VALUES (%(id)s, %(repository)s, {_NOW}, {_NOW}) RETURNING {_SESSION_COLUMNS}",
            id=session_id,
            repository=repository,
        )
        return _session(row)

    async def get_session(self, session_id: str) -> UploadSession | None:
        row = await self._one(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE id = %(id)s", id=session_id
        )
        return _session(row) if row is not None else None

    async def update_session(
        self,
        session_id: str,
        *,
        offset: int,
        hash_state: bytes | None = None,
        multipart_id: str | None = None,
        parts: Sequence[Part] = (),
    ) -> UploadSession | None:
        row = await self._one(
            f'UPDATE upload_sessions SET "offset" = %(offset)s, updated_at = {_NOW},'
            " hash_state = %(state)s, multipart_id = %(multipart)s, parts = %(parts)s::jsonb"
            f" WHERE id = %(id)s RETURNING {_SESSION_COLUMNS}",
            id=session_id,
            offset=offset,
            state=hash_state,
            multipart=multipart_id,
            parts=json.dumps([[p.number, p.etag, p.size] for p in parts]),
        )
        return _session(row) if row is not None else None

    async def delete_session(self, session_id: str) -> bool:
        row = await self._one("DELETE FROM upload_sessions WHERE id = %(id)s RETURNING id", id=session_id)
        return row is not None

    async def idle_sessions(self, idle_seconds: float) -> list[UploadSession]:
        rows = await self._all(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE updated_at < {_NOW} - %(idle)s",
            idle=idle_seconds,
        )
        return [_session(row) for row in rows]

    # -- liveness ------------------------------------------------------------------------------

    async def referenced(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        await self._all(
            f"INSERT INTO gc_references (key, at) SELECT k, {_NOW} FROM unnest(%(keys)s::text[]) AS k"
            " ON CONFLICT (key) DO UPDATE SET at = greatest(gc_references.at, excluded.at)"
            " RETURNING key",
            keys=sorted(set(keys)),  # one order for every writer: no deadlock between two upserts
        )

    async def last_referenced(self, keys: Sequence[str]) -> list[float | None]:
        if not keys:
            return []
        rows = await self._all("SELECT key, at FROM gc_references WHERE key = ANY(%(keys)s)", keys=list(keys))
        found = {key: float(at) for key, at in rows}
        return [found.get(key) for key in keys]

    async def forget(self, keys: Sequence[str]) -> None:
        if keys:
            await self._all(
                "DELETE FROM gc_references WHERE key = ANY(%(keys)s) RETURNING key", keys=list(keys)
            )

    # -- generations ---------------------------------------------------------------------------

    async def bump(self, topic: str) -> int:
        row = await self._one(
            "INSERT INTO generations (topic, value) VALUES (%(topic)s, 1)"
            " ON CONFLICT (topic) DO UPDATE SET value = generations.value + 1 RETURNING value",
            topic=check_name(topic, TOPIC_NAME),
        )
        return int(row[0])

    async def generation(self, topic: str) -> int:
        row = await self._one(
            "SELECT value FROM generations WHERE topic = %(topic)s", topic=check_name(topic, TOPIC_NAME)
        )
        return int(row[0]) if row is not None else 0

    # -- leases --------------------------------------------------------------------------------

    async def acquire_lease(self, job: str, holder: str, ttl: float) -> bool:
        row = await self._one(
            f"INSERT INTO leases (job, holder, expires_at) VALUES (%(job)s, %(holder)s, {_NOW} + %(ttl)s)"
            " ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            f" WHERE leases.holder = excluded.holder OR leases.expires_at <= {_NOW}"
            " RETURNING holder",
            job=check_name(job),
            holder=holder,
            ttl=ttl,
        )
        return row is not None

    async def release_lease(self, job: str, holder: str) -> None:
        await self._all(
            "DELETE FROM leases WHERE job = %(job)s AND holder = %(holder)s RETURNING job",
            job=check_name(job),
            holder=holder,
        )

    async def lease_holder(self, job: str) -> str | None:
        row = await self._one(
            f"SELECT holder FROM leases WHERE job = %(job)s AND expires_at > {_NOW}", job=check_name(job)
        )
        return str(row[0]) if row is not None else None

    # -- other tables of the same database (the listing index: storage.index) ------------------

    async def statement(self, sql: str, **params: Any) -> list[Any]:
        """Run one statement on a pooled connection of the migrated database; its rows ([] when it
        returns none). ``{now}`` in ``sql`` is this coordinator's clock (epoch seconds), as for
        every time it keeps."""
        async with self._conn() as conn:
            cursor = await conn.execute(sql.replace("{now}", _NOW).encode(), self._params(**params))
            return await cursor.fetchall() if cursor.description is not None else []

    async def close(self) -> None:
        if self._lock_conn is not None:
            await self._lock_conn.close()
            self._lock_conn = None
        for conn, _ in self._shared.values():
            if conn is not self._lock_conn:
                await conn.close()
        self._shared.clear()
        if self._opened:
            await self._pool.close()
            self._opened = False
