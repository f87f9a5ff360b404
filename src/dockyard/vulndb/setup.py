"""Which store a configuration keeps its advisories in: the coordinator's PostgreSQL with
``database.dsn``, else a SQLite file (``vulndb.path``, by default beside the filesystem driver's
data), else none (an in-memory or object store and no path: nowhere durable on this machine)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.config import Config, ConfigError
from dockyard.vulndb.store import SqliteVulnStore, VulnStore

if TYPE_CHECKING:
    from dockyard.coord.base import Coordinator

SQLITE_NAME = "dockyard-vulndb.sqlite"


def sqlite_path(config: Config) -> Path | None:
    if config.vulndb.path:
        return Path(config.vulndb.path)
    name, params = config.storage.driver()
    if name == "filesystem":
        return Path(params["rootdirectory"]) / SQLITE_NAME
    return None


def open_store(config: Config, coordinator: Coordinator | None) -> VulnStore | None:
    """The configured store (PostgreSQL through ``coordinator`` when ``database.dsn`` is set)."""
    if config.database.dsn:
        from dockyard.coord.postgres import PostgresCoordinator
        from dockyard.vulndb.pg import PgVulnStore

        if not isinstance(coordinator, PostgresCoordinator):
            raise ConfigError("database.dsn is set, but the coordinator is not PostgreSQL")
        return PgVulnStore(coordinator)
    path = sqlite_path(config)
    return SqliteVulnStore(path) if path is not None else None


def require_store(config: Config, coordinator: Coordinator | None) -> VulnStore:
    store = open_store(config, coordinator)
    if store is None:
        raise ConfigError(
            "the advisory database needs a place: set vulndb.path (a SQLite file) or database.dsn"
        )
    return store
