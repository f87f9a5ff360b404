"""Administrators' pages of what the registry did: the webhook queue and the audit log.

``/ui/events``: per endpoint, the events waiting (the first few of them), whether it is failing,
its last error and last success, delivered and dropped counts, and a form that clears its backoff
so its waiting events go at once (``Sender.redeliver``). ``/ui/audit``: the audit log filtered by
actor, repository, action and age, newest first, paged on the server. Both answer 404 to anyone
but an administrator, as the mirrors page does.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from dockyard.audit.log import MAX_RESULTS, Query, since_param
from dockyard.web.actions import forbidden, form_checked
from dockyard.web.context import Page, not_found
from dockyard.web.pages import PAGE_SIZES, paging

WAITING_SHOWN = 10  # events shown per endpoint
# What the audit log records (audit.log.record_of), for the action filter.
AUDIT_ACTIONS = (
    "push",
    "tag-move",
    "tag-delete",
    "delete",
    "login",
    "login-failed",
    "login-throttled",
    "gc",
    "gc-dry-run",
    "repository-delete",
    "retention",
    "robot-create",
    "robot-revoke",
    "scan",
    "rescan",
)
SINCE = {"": "Any time", "1h": "Last hour", "24h": "Last day", "7d": "Last week", "30d": "Last 30 days"}


async def events(page: Page) -> Response:
    notifier = page.services.notifier
    if not page.perms.is_admin():
        return not_found(page, "There is no such page, or you may not see it.")
    endpoints: list[dict[str, Any]] = []
    if notifier is not None:
        formats = {e.name: e.format for e in notifier.settings.endpoints}
        for row in await notifier.status():
            waiting = [] if row["disabled"] else await notifier.deliverer.waiting(row["name"], WAITING_SHOWN)
            endpoints.append({**row, "format": formats[row["name"]], "waiting": waiting})
    return page.render(
        "events.html",
        endpoints=endpoints,
        configured=notifier is not None,
        redelivered=page.request.query_params.get("redelivered"),
    )


async def redeliver(page: Page) -> Response:
    form = await form_checked(page)
    if form is None:
        return forbidden(page)
    notifier = page.services.notifier
    if not page.perms.is_admin():
        return not_found(page, "There is no such page, or you may not see it.")
    name = form.get("endpoint", "")
    enabled = {e.name for e in notifier.settings.endpoints if not e.disabled} if notifier else set()
    if notifier is None or name not in enabled:
        return page.render(
            "error.html", 404, heading="Not found", message="There is no enabled endpoint by that name."
        )
    waiting = await notifier.deliverer.redeliver(name)
    return page.redirect("/ui/events", redelivered=f"{name}: {waiting} waiting events go now")


def _filter(raw: str | None) -> str | None:
    value = (raw or "").strip()[:256]
    return value or None


async def audit(page: Page) -> Response:
    log = page.services.audit
    if not page.perms.is_admin():
        return not_found(page, "There is no such page, or you may not see it.")
    query = page.request.query_params
    filters = {
        "actor": _filter(query.get("actor")),
        "repository": _filter(query.get("repository")),
        "action": query.get("action") if query.get("action") in AUDIT_ACTIONS else None,
        "since": query.get("since") if query.get("since") in SINCE else "",
    }
    records: list[dict[str, Any]] = []
    if log is not None:
        since = since_param(filters["since"] or None, time.time())
        found = await log.query(
            Query(filters["repository"], filters["actor"], filters["action"], since, MAX_RESULTS)
        )
        records = found[::-1]  # newest first
    pager = paging(page, len(records))
    return page.render(
        "audit.html",
        configured=log is not None,
        records=records[pager["start"] : pager["end"]],
        filters=filters,
        params={k: v for k, v in filters.items() if v},
        actions=AUDIT_ACTIONS,
        sinces=SINCE,
        capped=len(records) >= MAX_RESULTS,
        pager=pager,
        sizes=PAGE_SIZES,
    )
