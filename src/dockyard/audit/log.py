"""Writing, pruning and querying the audit log (see the package's doc)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.errors import PathNotFound
from dockyard.events import (
    CollectionFinished,
    Event,
    LoginFailed,
    LoginSucceeded,
    ManifestDeleted,
    ManifestPushed,
    RepositoryDeleted,
    RetentionApplied,
    RobotCreated,
    RobotRevoked,
    ScanFinished,
    TagDeleted,
)
from dockyard.events.request import current_request
from dockyard.notify.queue import EventQueue
from dockyard.notify.spool import Spool
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

log = logging.getLogger("dockyard.audit")
MAX_RESULTS = 10_000
# htpasswd clients send their password with every request, and each is checked: a successful
# login is recorded once per account and address in this long, per worker, not per request.
LOGIN_QUIET_SECONDS = 3600.0
_LOGIN_MEMORY = 10_000


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_of(event: Event) -> dict[str, Any] | None:
    """The audit record an event makes (without time and request), or None if it is not audited."""
    if isinstance(event, ManifestPushed):
        if event.previous is not None:  # the push moved an existing tag to this manifest
            return {
                "action": "tag-move",
                "repository": event.repository,
                "digest": event.digest,
                "tag": event.tag,
                "previous": event.previous,
            }
        return {"action": "push", "repository": event.repository, "digest": event.digest, "tag": event.tag}
    if isinstance(event, ManifestDeleted):
        return {"action": "delete", "repository": event.repository, "digest": event.digest}
    if isinstance(event, TagDeleted):
        return {"action": "tag-delete", "repository": event.repository, "tag": event.tag}
    if isinstance(event, LoginSucceeded):
        return {"action": "login", "actor": event.account, "client": event.client}
    if isinstance(event, LoginFailed):
        action = "login-throttled" if event.throttled else "login-failed"
        return {"action": action, "actor": event.account, "client": event.client}
    if isinstance(event, RepositoryDeleted):
        return {"action": "repository-delete", "repository": event.repository}
    if isinstance(event, RetentionApplied):
        return {
            "action": "retention",
            "repository": event.repository,
            "deleted": [{"tag": t, "digest": d, "rule": r} for t, d, r in event.tags],
            "untagged": list(event.untagged),
        }
    if isinstance(event, RobotCreated):
        return {
            "action": "robot-create",
            "robot": event.name,
            "repositories": list(event.repositories),
            "actions": list(event.actions),
            "expires": _iso(int(event.expires * 1e9)) if event.expires is not None else None,
            "osUser": event.by or None,
        }
    if isinstance(event, RobotRevoked):
        return {"action": "robot-revoke", "robot": event.name, "osUser": event.by or None}
    if isinstance(event, CollectionFinished):
        return {
            "action": "gc-dry-run" if event.dry_run else "gc",
            "blobsDeleted": event.blobs_deleted,
            "manifestsDeleted": event.manifests_deleted,
            "bytesFreed": event.bytes_freed,
        }
    if isinstance(event, ScanFinished):
        return {
            "action": "rescan" if event.reason == "rescan" else "scan",
            "repository": event.repository,
            "digest": event.digest,
            "state": event.state,
            "findings": dict(event.counts),
        }
    return None


@dataclass(frozen=True, slots=True)
class Query:
    repository: str | None = None
    actor: str | None = None
    action: str | None = None
    since: float | None = None  # epoch seconds
    limit: int = 1000

    def matches(self, record: dict[str, Any]) -> bool:
        return (
            (self.repository is None or record.get("repository") == self.repository)
            and (self.actor is None or record.get("actor") == self.actor)
            and (self.action is None or record.get("action") == self.action)
        )


class AuditLog:
    """The events' subscriber that records, and the reader the admin API asks."""

    def __init__(
        self, driver: CheckedDriver, retention: float, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.driver = driver
        self.retention = retention
        self.clock = clock
        self.store = Spool(driver, clock=clock, directory=lambda ns: f"{paths.AUDIT}/{_day(ns)}", lines=True)
        # Where records are written: the store's spool here, the database in ``audit.pg``.
        self.spool: EventQueue = self.store
        self._pruned_day = ""
        self._logins: dict[tuple[str, str], int] = {}

    def _repeated_login(self, event: LoginSucceeded, now: int) -> bool:
        key = (event.account, event.client.rsplit(":", 1)[0])
        last = self._logins.get(key)
        if last is not None and now - last < LOGIN_QUIET_SECONDS * 1e9:
            return True
        if len(self._logins) >= _LOGIN_MEMORY:
            self._logins.clear()
        self._logins[key] = now
        return False

    def emit(self, event: Event) -> None:
        record = record_of(event)
        if record is None:
            return
        if isinstance(event, LoginSucceeded) and self._repeated_login(event, self.clock()):
            return
        request = current_request()
        now = self.clock()
        record = {"time": _iso(now), **{k: v for k, v in record.items() if v is not None}}
        if request is not None:
            record.setdefault("actor", request.actor)
            record.setdefault("client", request.addr)
            record["requestId"] = request.id
        record.setdefault("actor", "system")  # scheduled maintenance, no request
        waiter = self.spool.add(record.get("repository", ""), record)
        if request is not None and not isinstance(event, LoginSucceeded | LoginFailed):
            request.pending.append(waiter)  # recorded before the client hears of the change
        else:
            waiter.add_done_callback(lambda w: None if w.cancelled() else w.exception())
        day = _day(now)
        if day != self._pruned_day:
            self._pruned_day = day
            task = asyncio.get_running_loop().create_task(self.prune())
            task.add_done_callback(lambda t: None if t.cancelled() else t.exception())

    async def days(self) -> list[str]:
        try:
            return sorted(await self.driver.list_dir(paths.AUDIT))
        except PathNotFound:
            return []

    async def prune(self) -> int:
        """Delete the days wholly older than the retention; how many."""
        cutoff = _day(self.clock() - int(self.retention * 1e9))
        old = [d for d in await self.days() if d < cutoff]
        if old:
            await self.driver.delete_many([f"{paths.AUDIT}/{d}" for d in old])
            log.info("audit log days deleted past retention", extra={"days": len(old)})
        return len(old)

    async def query(self, query: Query) -> list[dict[str, Any]]:
        """Matching records, oldest first, at most ``query.limit``."""
        since_ns = int(query.since * 1e9) if query.since is not None else 0
        first_day = _day(since_ns) if since_ns else ""
        found: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
        for day in await self.days():
            if day < first_day:
                continue
            directory = f"{paths.AUDIT}/{day}"
            for f in await self.store.files(directory):
                for r in await self.store.read(f.name, directory):
                    if r.key[0] >= since_ns and query.matches(r.event):
                        found.append((r.key, r.event))
        found.sort(key=lambda item: item[0])
        return [record for _, record in found[: query.limit]]


def since_param(raw: str | None, now: float) -> float | None:
    """``since``: RFC 3339 time, or a duration back from now like ``24h`` / ``7d``."""
    if raw is None or raw == "":
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if raw[-1:] in units and raw[:-1].isdigit():
        return now - int(raw[:-1]) * units[raw[-1]]
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


__all__ = ["AuditLog", "Query", "since_param"]
