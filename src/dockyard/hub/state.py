"""Per-process state of the Hub API and the web UI: pull times, the browser, the inventory."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.api.context import Context, Services
from dockyard.hub.browse import Browser
from dockyard.hub.pulls import PullLog
from dockyard.oci.digest import Digest
from dockyard.storage.inventory import Inventory


@dataclass(slots=True)
class HubState:
    pulls: PullLog
    browser: Browser
    inventory: Inventory


def of(services: Services) -> HubState:
    state = services.hub
    if not isinstance(state, HubState) or state.browser.registry is not services.registry:
        pulls = PullLog(services.driver, read_only=services.config.storage.maintenance.readonly.enabled)
        state = HubState(pulls, Browser(services.registry, pulls), Inventory(services.registry))
        services.hub = state
    return state


def record_pull(ctx: Context, digest: Digest, reference: str | Digest) -> None:
    """The manifest GET hook: remember the pull in memory (HEAD is not a pull)."""
    if ctx.request.method == "GET":
        of(ctx.services).pulls.record(
            ctx.name, str(digest), reference if isinstance(reference, str) else None
        )
