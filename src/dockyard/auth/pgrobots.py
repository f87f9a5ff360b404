"""Robot accounts in the replicas' PostgreSQL database (``database.dsn``).

The same accounts as :class:`~dockyard.auth.robots.RobotStore`, in the ``robots`` table, so a
robot created through any replica (or ``dockyard token create`` on any machine) logs in on all
of them, and a revocation holds everywhere. Reads answer from a snapshot: :meth:`refresh` asks
the database for the ``robots`` generation (one small query) and reloads the table only when
it moved; logins and the UI's session checks refresh first, so they see changes at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dockyard.auth.robots import Robot, RobotError, match_token, new_robot
from dockyard.coord.postgres import NOW, PostgresCoordinator

TOPIC = "robots"
_COLUMNS = "name, repositories, actions, created, expires, revoked, hash, id"


def _robot(row: Sequence[Any]) -> Robot:
    name, repositories, actions, created, expires, revoked, hash_, id_ = row
    return Robot(
        name=name,
        repositories=tuple(repositories),
        actions=tuple(actions),
        created=float(created),
        expires=float(expires) if expires is not None else None,
        revoked=float(revoked) if revoked is not None else None,
        hash=hash_,
        id=id_,
    )


class PostgresRobots:
    def __init__(self, coordinator: PostgresCoordinator) -> None:
        self.coordinator = coordinator
        self._robots: list[Robot] = []
        self._generation = -1

    async def refresh(self) -> None:
        generation = await self.coordinator.generation(TOPIC)
        if generation != self._generation:
            rows = await self.coordinator.fetch_all(f"SELECT {_COLUMNS} FROM robots ORDER BY created")
            self._robots, self._generation = [_robot(r) for r in rows], generation

    def robots(self) -> list[Robot]:
        return self._robots

    def get(self, name: str) -> Robot | None:
        return next((r for r in self._robots if r.name == name), None)

    def authenticate(self, username: str, secret: str) -> Robot | None:
        return match_token(self._robots, username, secret)

    async def create(
        self, name: str, repositories: list[str], actions: list[str], lifetime: float | None
    ) -> tuple[Robot, str]:
        now = await self.coordinator.now()
        robot, secret = new_robot(name, repositories, actions, lifetime, now)
        async with self.coordinator.transaction(lock=f"robot-{name[:80]}") as tx:
            if await tx.fetch_one(
                "SELECT 1 FROM robots WHERE name = %(name)s AND revoked IS NULL", name=name
            ):
                raise RobotError(f"a robot named {name!r} exists (revoke it first)")
            await tx.fetch_all("DELETE FROM robots WHERE name = %(name)s", name=name)
            await tx.fetch_all(
                f"INSERT INTO robots ({_COLUMNS}) VALUES (%(name)s, %(repositories)s::jsonb,"
                " %(actions)s::jsonb, %(created)s, %(expires)s, NULL, %(hash)s, %(id)s)",
                name=robot.name,
                repositories=json.dumps(list(robot.repositories)),
                actions=json.dumps(list(robot.actions)),
                created=robot.created,
                expires=robot.expires,
                hash=robot.hash,
                id=robot.id,
            )
        await self.coordinator.bump(TOPIC)
        await self.refresh()
        return robot, secret

    async def revoke(self, name: str) -> Robot:
        row = await self.coordinator.fetch_one(
            f"UPDATE robots SET revoked = {NOW} WHERE name = %(name)s AND revoked IS NULL"
            f" RETURNING {_COLUMNS}",
            name=name,
        )
        if row is None:
            raise RobotError(f"no active robot named {name!r}")
        await self.coordinator.bump(TOPIC)
        await self.refresh()
        return _robot(row)
