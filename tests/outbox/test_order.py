"""Order per repository across replicas: two replicas move one tag at the same moment, and the
receiver hears the moves in the order the store took them.

The interleaving is forced, not hoped for: replica A's outbox insert is held at a gate after A
moved ``latest``; replica B then moves ``latest`` too. Without the per-repository order
(``events.order``) B's change and its event go through while A's event waits, the receiver
hears B then A, and believes A's digest is ``latest`` although the store says B's. With it, B
waits for the repository's lock (it has tried it, as PostgreSQL's ``pg_stat_activity`` shows)
until A's event is in the outbox, and the receiver hears A then B.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from dockyard.coord.postgres import PostgresCoordinator
from dockyard.notify.queue import PgAppender
from dockyard.services import Services
from tests.observe.receiver import Receiver
from tests.outbox.conftest import client_of, replica
from tests.outbox.test_outbox import OCI, Clock, close, manifest, push, sender

pytestmark = pytest.mark.anyio


class GatedDatabase:
    """The coordinator as replica A's outbox sees it: its next statement waits at a gate."""

    def __init__(self, pg: PostgresCoordinator) -> None:
        self.pg = pg
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()

    async def statement(self, sql: str, **params: Any) -> list[Any]:
        self.reached.set()
        await self.gate.wait()
        return await self.pg.statement(sql, **params)


def outbox_of(services: Services) -> PgAppender:
    assert services.notifier is not None and isinstance(services.notifier.spool, PgAppender)
    return services.notifier.spool


async def tried_the_repository_lock(replica: PostgresCoordinator) -> bool:
    """Whether ``replica`` has tried an exclusive lock, the repository's: the last statement of its
    lock connection (made by its first try). Its other locks on the way, the gc lock's, are shared."""
    conn = replica._lock_conn
    if conn is None:
        return False
    rows = await replica.statement(
        "SELECT query FROM pg_stat_activity WHERE pid = %(pid)s", pid=conn.info.backend_pid
    )
    return bool(rows) and str(rows[0][0]).startswith("SELECT pg_try_advisory_lock(")


async def test_a_tag_moved_on_two_replicas_at_once_is_heard_in_the_stores_order(
    tmp_path: Path, dsn: str, receiver: Receiver
) -> None:
    one, two = replica(tmp_path, dsn, receiver.port), replica(tmp_path, dsn, receiver.port)
    assert isinstance(one.coordinator, PostgresCoordinator)
    assert isinstance(two.coordinator, PostgresCoordinator)
    try:
        async with client_of(one) as a, client_of(two) as b:
            await push(a, "app", 0)  # the config blob, and t0
            gated = GatedDatabase(one.coordinator)
            outbox_of(one).pg = gated  # type: ignore[assignment]
            moves = {n: manifest(n) for n in (1, 2)}

            async def move(client: Any, n: int) -> None:
                answer = await client.put(
                    "/v2/app/manifests/latest", content=moves[n], headers={"Content-Type": OCI}
                )
                assert answer.status_code == 201, answer.text

            first = asyncio.create_task(move(a, 1))
            await gated.reached.wait()  # A moved latest; its event waits at the gate
            second = asyncio.create_task(move(b, 2))
            while not second.done() and not await tried_the_repository_lock(two.coordinator):
                await asyncio.sleep(0.01)
            gated.gate.set()
            await asyncio.gather(first, second)
            stored = (await a.get("/v2/app/manifests/latest", headers={"Accept": OCI})).headers[
                "Docker-Content-Digest"
            ]
        receiver.start()
        deliverer = sender(one, Clock())
        assert await deliverer._lead()
        while await deliverer.step():
            pass
        heard = [
            e["target"]["digest"]
            for e in receiver.events()
            if e["action"] == "push" and e["target"].get("tag") == "latest"
        ]
        digest = {n: "sha256:" + hashlib.sha256(body).hexdigest() for n, body in moves.items()}
        assert stored == digest[2]  # B's move came second in the store...
        assert heard == [digest[1], digest[2]]  # ...and is heard second
    finally:
        await close(one, two)
