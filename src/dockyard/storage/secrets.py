"""Secrets every process and replica of one registry must agree on (the UI's session key).

Created at random by whichever process asks first, then read by all. Without a database the
secret is a small file in the store's ``_dockyard/`` area, written only if absent (so two
processes starting together still agree); with ``database.dsn`` it is a row in the
``shared_secrets`` table instead (:class:`PostgresSecrets`), so it is not left readable in the
bucket and every replica reads the one value, whichever started first.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Protocol

from dockyard.errors import PathNotFound
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

if TYPE_CHECKING:
    from dockyard.coord.postgres import PostgresCoordinator

# The names this registry uses, and where the store keeps each without a database.
UI_SESSION_KEY = "ui-session-key"
_PATHS = {UI_SESSION_KEY: paths.UI_SESSION_KEY}
SIZE = 32


class SharedSecrets(Protocol):
    async def get_or_create(self, name: str) -> bytes:
        """The secret called ``name`` (``SIZE`` random bytes, made by the first to ask)."""


class StoreSecrets:
    def __init__(self, driver: CheckedDriver) -> None:
        self.driver = driver

    async def get_or_create(self, name: str) -> bytes:
        path = _PATHS[name]
        await self.driver.put_if_absent(path, secrets.token_hex(SIZE).encode())
        try:
            return bytes.fromhex((await self.driver.get_content(path)).decode().strip())
        except (PathNotFound, ValueError):  # unreadable: it lasts as long as this process
            return secrets.token_bytes(SIZE)


class PostgresSecrets:
    def __init__(self, coordinator: PostgresCoordinator) -> None:
        self.coordinator = coordinator

    async def get_or_create(self, name: str) -> bytes:
        row = await self.coordinator.fetch_one(
            "WITH made AS (INSERT INTO shared_secrets (name, value) VALUES (%(name)s, %(value)s)"
            " ON CONFLICT (name) DO NOTHING RETURNING value)"
            " SELECT value FROM made UNION ALL SELECT value FROM shared_secrets WHERE name = %(name)s",
            name=_check(name),
            value=secrets.token_bytes(SIZE),
        )
        return bytes(row[0])


def _check(name: str) -> str:
    if name not in _PATHS:
        raise ValueError(f"unknown shared secret {name!r}")
    return name
