"""The services one worker process builds once and hands to every surface (API, Hub API, UI, health).

``dockyard.app.create_services`` wires them explicitly from the configuration; nothing here is
built lazily or looked up by name, so mypy sees every member's type. Living in its own module (not
in ``api``) is what lets ``web``, ``health`` and the Hub API use them without importing the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dockyard.auth.access import AccessController
from dockyard.browse.browser import Browser
from dockyard.browse.pulls import PullLog
from dockyard.config import Config
from dockyard.coord.base import Coordinator
from dockyard.storage.drivers.checked import CheckedDriver
from dockyard.storage.inventory import Inventory
from dockyard.storage.model import MaintenanceModel, RegistryModel
from dockyard.storage.registry import Registry
from dockyard.storage.secrets import SharedSecrets

if TYPE_CHECKING:  # optional features: a worker imports them only when they are configured
    from dockyard.audit.log import AuditLog
    from dockyard.metrics.collectors import Metrics
    from dockyard.notify.service import Notifier
    from dockyard.proxy import ProxyRegistry
    from dockyard.scan import ScanService
    from dockyard.scan.policy import PullPolicies
    from dockyard.vulndb.store import VulnStore


@dataclass(slots=True)
class Services:
    config: Config
    driver: CheckedDriver
    coordinator: Coordinator
    registry: Registry
    # What the registry API's handlers call: the registry itself, or a layer wrapping it.
    model: RegistryModel
    access: AccessController
    # The read model the Hub API and the UI share: pull times, listings, what an image holds.
    pulls: PullLog
    browser: Browser
    inventory: Inventory
    # Secrets every replica agrees on (the UI's session key): in the store, or the database.
    secrets: SharedSecrets
    # On-demand maintenance (the admin API, the CLI): collection, quota usage, retention.
    maintenance: MaintenanceModel
    # Prometheus metrics (http.debug.prometheus.enabled), None when off.
    metrics: Metrics | None = None
    # Upstream prefixes a containerd mirror request's ``ns=<host>`` may select (the pull-through
    # cache's; empty without one): ``library/nginx?ns=docker.io`` is ``docker.io/library/nginx``.
    namespaces: frozenset[str] = field(default_factory=frozenset)
    # The pull-through cache (also ``model``), None without a ``proxy`` section.
    proxy: ProxyRegistry | None = None
    # Webhooks (notifications.endpoints), None when no endpoint is enabled.
    notifier: Notifier | None = None
    # The audit log (audit.enabled), None when off.
    audit: AuditLog | None = None
    # The advisory database (vulndb; the SQLite file opens on first use), None with nowhere to keep it.
    vulndb: VulnStore | None = None
    # SBOMs of pushed images (scan.enabled), None when off.
    scans: ScanService | None = None
    # Pull policies (scan.policies), None without any: the manifest handler asks them for a check.
    policies: PullPolicies | None = None
