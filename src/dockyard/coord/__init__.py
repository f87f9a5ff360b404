"""Coordination between the processes and replicas serving one store (see ``coord.base``).

Chosen by configuration: ``database.dsn`` selects PostgreSQL; otherwise the filesystem driver
gets the local coordinator in its root's ``_dockyard/`` area, and the in-memory driver (one
process by nature) the in-memory one. Each implementation is imported only when chosen.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

from dockyard.coord.base import Clock, Coordinator, Part, UploadSession

if TYPE_CHECKING:
    from dockyard.coord.index import PostgresIndexRows
    from dockyard.coord.postgres import PostgresCoordinator

# The store's own area for coordination files, which distribution ignores (it lists repositories).
LOCAL_AREA = "docker/registry/v2/_dockyard"


def create_coordinator(
    dsn: str | None, driver_name: str, driver_params: dict[str, object], *, inline: bool = True
) -> Coordinator:
    """``inline``: the filesystem driver's ``inlinemetadata`` decision, which the local coordinator
    (its files are under the same root) follows."""
    if dsn:
        from dockyard.coord.postgres import PostgresCoordinator

        return PostgresCoordinator(dsn)
    if driver_name == "filesystem":
        from dockyard.coord.local import LocalCoordinator

        root = str(driver_params["rootdirectory"])
        return LocalCoordinator(os.path.join(os.path.abspath(root), LOCAL_AREA), inline=inline)
    from dockyard.coord.memory import MemoryCoordinator

    return MemoryCoordinator()


def create_index(coordinator: Coordinator) -> PostgresIndexRows | None:
    """The listing index's rows, kept beside the PostgreSQL coordinator's (None without one:
    listings walk the store, ``storage.listing``)."""
    if coordinator.name != "postgres":
        return None
    from dockyard.coord.index import PostgresIndexRows

    return PostgresIndexRows(cast("PostgresCoordinator", coordinator))


__all__ = ["Clock", "Coordinator", "Part", "UploadSession", "create_coordinator"]
