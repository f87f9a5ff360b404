"""The audit log: who pushed, deleted, logged in, collected garbage, applied retention, deleted
a repository or made and revoked robot accounts, and when.

Records are JSON objects (``time``, ``action``, ``actor``, ``repository``, ``tag``, ``digest``,
``client``, ``requestId`` and what the action adds), written as JSON lines files under the
store's ``_dockyard/audit/<YYYY-MM-DD>/`` through the storage driver, group-committed like the
webhook queue. A change's record is durable before the request that made it is answered; login
records go with the next write without holding the answer (a failed login must not cost the
server a disk flush each), and a successful login is recorded once per account and address an
hour (htpasswd clients log in with every request). Whole days older than ``audit.retention``
are deleted. Names of accounts are recorded, never a password or token. What has no registry
identity behind it (scheduled maintenance, the command line on a storage root) is recorded as
actor ``system``; ``dockyard token`` adds the operating-system account that ran it (``osUser``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.audit.log import AuditLog
    from dockyard.config import Config
    from dockyard.coord.base import Coordinator
    from dockyard.storage.drivers.checked import CheckedDriver


def create_audit_log(config: Config, driver: CheckedDriver, coordinator: Coordinator | None) -> AuditLog:
    """The store's log on one machine; with ``database.dsn`` (and its coordinator), the table
    every replica shares. The worker (``app.create_services``) and ``dockyard token`` use it."""
    from dockyard.audit.log import AuditLog

    if config.database.dsn:
        from dockyard.audit.pg import PgAuditLog
        from dockyard.coord.postgres import PostgresCoordinator

        if isinstance(coordinator, PostgresCoordinator):
            return PgAuditLog(coordinator, driver, config.audit.retention)
    return AuditLog(driver, config.audit.retention)
