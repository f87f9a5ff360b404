"""``create_app(config)``: every dependency wired explicitly, once per worker process."""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from dockyard import log
from dockyard.api.app import RegistryApp
from dockyard.api.bodytimeout import BodyTimeoutApp
from dockyard.api.hub.flush import FlushPullsApp
from dockyard.api.observe import ObserveApp
from dockyard.auth.access import AccessController
from dockyard.auth.setup import AuthState, build_access, local_state
from dockyard.browse.browser import Browser
from dockyard.browse.pullevents import PullSubscriber
from dockyard.browse.pulls import PullLog, digest_key, tag_key
from dockyard.config import CONFIG_PATH_ENV, Config
from dockyard.coord import create_coordinator, create_index
from dockyard.coord.base import Coordinator
from dockyard.events import EventSink, Fanout
from dockyard.events.order import Ordering
from dockyard.health import HealthApp
from dockyard.maintenance import Job, Scheduler, jobs_from_config
from dockyard.services import Services
from dockyard.storage.driver import StorageDriver
from dockyard.storage.drivers import create_driver
from dockyard.storage.drivers.checked import CheckedDriver, checked
from dockyard.storage.inventory import Inventory
from dockyard.storage.quota import LocalLedger, QuotaLedger, QuotaRule, Quotas
from dockyard.storage.registry import Registry
from dockyard.storage.replicas import REPLICA_ID_ENV, Heartbeat, database_beat, this_replica
from dockyard.storage.secrets import SharedSecrets, StoreSecrets
from dockyard.storage.sparse import Presence
from dockyard.storage.upkeep import RegistryMaintenance

if TYPE_CHECKING:
    from dockyard.metrics.collectors import Metrics
    from dockyard.notify.service import Notifier
    from dockyard.proxy import Transports

# The optional features (metrics, webhooks, the audit log, the pull-through cache) are imported
# where they are configured, not here: a worker that does not use them does not load
# prometheus-client or httpx (with its command line's rich and pygments), ~10 MiB per worker.


def create_services(
    config: Config,
    *,
    wrap_driver: Callable[[StorageDriver], StorageDriver] | None = None,
    clock: Callable[[], float] = time.monotonic,
    access: AccessController | None = None,
    upstream_transports: Transports | None = None,
) -> Services:
    """Build the worker's services (the only place the graph is built: the CLI's storage backend
    calls it too); ``wrap_driver`` puts a layer around the driver (tests use it to inject faults)
    before anything holds a reference to it; ``clock`` (monotonic seconds) is the one the access
    controller paces its re-reads by (tests advance it instead of sleeping); ``access`` replaces
    the configured controller (the CLI acts on storage as its owner, and must not create the token
    server's keys as a side effect). The pull-through cache times its revalidations and upstream
    tokens by ``clock`` too, and ``upstream_transports`` gives its upstreams their HTTP transport
    (tests)."""
    name, params = config.storage.driver()
    redirect = not config.storage.redirect.disable
    driver = create_driver(name, params, redirect=redirect)
    metrics = None
    if config.http.metrics_enabled:
        from dockyard.metrics.collectors import Metrics

        metrics = Metrics()
    inner = driver.inner if wrap_driver is None else wrap_driver(driver.inner)  # behind the one wrapper
    if wrap_driver is not None or metrics is not None:
        driver = checked(inner, redirect=redirect, observer=metrics)
    # The local coordinator's files live under the filesystem driver's root: on a network
    # filesystem the driver keeps its metadata off the event loop, and so do the coordinator and
    # the pull-through cache's fills.
    inline = bool(getattr(inner, "inline_metadata", True))
    coordinator = create_coordinator(config.database.dsn, name, params, inline=inline)
    rules = [QuotaRule(q.repositories, q.limit, q.warning_bytes) for q in config.quotas]
    pulls = PullLog(driver, coordinator, read_only=config.storage.maintenance.readonly.enabled)
    # After-commit events: pull times, then the metrics.
    subscribers: list[EventSink] = [PullSubscriber(pulls)]
    if metrics is not None:
        from dockyard.metrics.subscriber import MetricsSubscriber

        subscribers.append(MetricsSubscriber(metrics))
    notifier = None
    if any(not e.disabled for e in config.notifications.endpoints):
        from dockyard.notify.subscriber import NotifySubscriber

        notifier = create_notifier(config, driver, coordinator, metrics)
        subscribers.append(NotifySubscriber(notifier.spool, config))
    audit = None
    if config.audit.enabled:
        from dockyard.audit import create_audit_log

        audit = create_audit_log(config, driver, coordinator)
        subscribers.append(audit)
    scan_queue, scan_intake = None, None
    if config.scan.enabled and not config.storage.maintenance.readonly.enabled:
        from dockyard.scan import create_queue
        from dockyard.scan.subscriber import ScanSubscriber

        scan_queue = create_queue(config, driver, coordinator)
        scan_intake = ScanSubscriber(scan_queue)
        subscribers.append(scan_intake)
    policy_cache = None
    if config.scan.policies:  # what pull policies read, forgotten when this worker changes it
        from dockyard.scan.policy import PolicyCache

        policy_cache = PolicyCache(config.scan.policycache, clock)
        subscribers.append(policy_cache)
    events = Fanout(subscribers)
    shared = shared_state(config, driver, coordinator)
    quotas = Quotas(driver, rules, shared.quotas, events) if rules else None
    registry = Registry(
        driver,
        quotas,
        coordinator=coordinator,
        events=events,
        presence=Presence.from_config(config.validation),
        index=create_index(coordinator),
        ordering=repository_order(coordinator, notifier),
        track_moves=audit is not None,
    )

    # The pull-through cache, when configured, stands in front of the registry for the API.
    async def last_pulled(repository: str, key: str) -> float | None:
        await pulls.refresh()
        return pulls.last(digest_key(repository, key) if ":" in key else tag_key(repository, key))

    from dockyard.vulndb.setup import open_store

    vulndb = open_store(config, coordinator)
    scans = None
    if scan_queue is not None:  # a scan: SBOMs, then (with an advisory database) their findings
        from dockyard.scan import create_service

        scans = create_service(config, registry, scan_queue, vulndb, scan_intake)
    policies = None
    if policy_cache is not None:
        from dockyard.scan import create_queue
        from dockyard.scan.policy import PullPolicies

        results = scan_queue or create_queue(config, driver, coordinator)  # read-only: results only
        policies = PullPolicies(config.scan.policies, registry, results, policy_cache)
    proxy = None
    if config.proxy.enabled:
        from dockyard.proxy import build_proxy

        proxy = build_proxy(
            config,
            registry,
            clock=clock,
            transports=upstream_transports,
            last_pulled=last_pulled,
            inline_metadata=inline,
        )
    return Services(
        config=config,
        driver=driver,
        coordinator=coordinator,
        registry=registry,
        model=proxy or registry,
        namespaces=proxy.router.namespaces if proxy is not None else frozenset(),
        proxy=proxy,
        access=access
        if access is not None
        else build_access(config, clock=clock, events=events, state=shared.auth),
        secrets=shared.secrets,
        pulls=pulls,
        browser=Browser(registry, pulls),
        inventory=Inventory(registry),
        maintenance=RegistryMaintenance(registry),
        metrics=metrics,
        notifier=notifier,
        audit=audit,
        vulndb=vulndb,
        scans=scans,
        policies=policies,
    )


def repository_order(coordinator: Coordinator, notifier: Notifier | None) -> Ordering | None:
    """With webhooks on, a repository's changes and their events in one order (``events.order``)."""
    if notifier is None:
        return None
    from dockyard.notify.order import RepositoryOrder

    return RepositoryOrder(coordinator, notifier.spool.flushed)


@dataclass(frozen=True, slots=True)
class SharedState:
    """Where the state every replica must agree on lives. ``auth`` is a maker, so a registry
    without auth never builds the accounts' state (nor creates a signing key)."""

    secrets: SharedSecrets
    auth: Callable[[], AuthState]
    quotas: QuotaLedger


def shared_state(config: Config, driver: CheckedDriver, coordinator: Coordinator) -> SharedState:
    """With ``database.dsn``, the coordinator's database; otherwise the store, this machine's
    files and this process's memory, as on one machine."""
    if config.database.dsn:
        from dockyard.auth.setup import postgres_state
        from dockyard.coord.postgres import PostgresCoordinator
        from dockyard.storage.quota_pg import PostgresLedger
        from dockyard.storage.secrets import PostgresSecrets

        if not isinstance(coordinator, PostgresCoordinator):
            raise TypeError(f"database.dsn is set, but the coordinator is {coordinator.name}")
        pg = coordinator
        return SharedState(PostgresSecrets(pg), lambda: postgres_state(config, pg), PostgresLedger(pg))
    return SharedState(StoreSecrets(driver), lambda: local_state(config), LocalLedger())


def create_notifier(
    config: Config, driver: CheckedDriver, coordinator: Coordinator, metrics: Metrics | None
) -> Notifier:
    """The store's spool on one machine; with ``database.dsn``, the PostgreSQL outbox every
    replica shares."""
    from dockyard.notify.deliver import Deliverer
    from dockyard.notify.service import Notifier
    from dockyard.notify.spool import Spool

    if config.database.dsn:
        from dockyard.coord.postgres import PostgresCoordinator
        from dockyard.notify.outbox import OutboxDeliverer, outbox

        if not isinstance(coordinator, PostgresCoordinator):
            raise TypeError(f"database.dsn is set, but the coordinator is {coordinator.name}")
        sender = OutboxDeliverer(coordinator, config.notifications, metrics=metrics)
        return Notifier(outbox(coordinator, config.notifications), sender, config.notifications)
    spool = Spool(driver, window=config.notifications.pullwindow)
    deliverer = Deliverer(spool, config.notifications, coordinator, metrics=metrics)
    return Notifier(spool, deliverer, config.notifications)


def wrap_token_server(app: ASGIApp, access: AccessController, prefix: str) -> ASGIApp:
    """Mount the built-in token server in front of the API when it is enabled (imported only then:
    it loads the JWT and crypto modules)."""
    if access.issuer is None:
        return app
    from dockyard.api.tokenserver import TokenServer, TokenServerApp

    return TokenServerApp(app, TokenServer(access.issuer), prefix)


def create_app(config: Config, *, replica_id: str | None = None) -> ASGIApp:
    log.configure(config.log)
    return build_app(create_services(config), replica_id=replica_id)


def heartbeat(services: Services, replica_id: str) -> Heartbeat:
    """The beat of this worker's replica (``dockyard serve`` made its id): into the store, and
    with ``database.dsn`` into the database, timed by the coordinator's clock."""
    config = services.config
    now = services.coordinator.now
    database = None
    if config.database.dsn:
        from dockyard.coord.postgres import PostgresCoordinator

        if isinstance(services.coordinator, PostgresCoordinator):
            database = database_beat(services.coordinator)
    me = this_replica(database=database is not None, now=time.time(), replica_id=replica_id)
    return Heartbeat(services.driver, me, now, database)


def scan_jobs(services: Services) -> list[Job]:
    """``scan.concurrency`` slots draining the scan queue, each run by one process at a time;
    with an advisory database, ``scan-rescan``, which queues a re-match of the stored SBOMs when
    the database's revision moves."""
    if services.scans is None:
        return []
    scan = services.config.scan
    jobs = [Job(f"scan-{i}", scan.interval, 0.0, services.scans.drain_job) for i in range(scan.concurrency)]
    if services.scans.scanner.vulndb is not None:
        jobs.append(Job("scan-rescan", scan.interval, 0.0, services.scans.rescan_job))
    return jobs


def build_app(services: Services, *, replica_id: str | None = None) -> ASGIApp:
    """Every HTTP surface over ``services``, in the order a request meets them; ``replica_id``
    (under ``dockyard serve``) makes each worker beat for its replica."""
    config = services.config
    jobs = jobs_from_config(config, services.registry, services.coordinator)
    if services.proxy is not None and not config.storage.maintenance.readonly.enabled:
        from dockyard.proxy import tasks as proxy_tasks

        jobs += [Job(t.name, t.interval, t.first_delay, t.run) for t in proxy_tasks(services.proxy, config)]
    jobs += scan_jobs(services)
    scheduler = Scheduler(services.coordinator, jobs)
    writes = config.storage.inmemory is None and not config.storage.maintenance.readonly.enabled
    beat = heartbeat(services, replica_id) if replica_id and writes else None  # read-only: no record
    api = wrap_token_server(RegistryApp(services, scheduler, beat), services.access, config.http.prefix)
    app: ASGIApp = HealthApp(api, services)
    if config.ui.enabled:
        from dockyard.web.app import WebApp  # Jinja2 loads only when the UI is on

        app = WebApp(app, services)
    app = BodyTimeoutApp(FlushPullsApp(app, services), config.http.timeouts.body)
    if services.notifier is not None:
        from dockyard.notify.lifespan import NotifyApp

        app = NotifyApp(app, services.notifier.spool, services.notifier.deliverer)
    return ObserveApp(app, services.metrics)


def app_from_env() -> ASGIApp:
    """Factory for server worker processes: the parent passes the validated config as JSON, in a
    file named by ``DOCKYARD_CONFIG_PATH`` (``server.config_handoff``).

    Everything built here lives as long as the process, so it is moved out of the cyclic
    garbage collector's view (``gc.freeze``), and the youngest generation is collected less
    often: a request allocates a few hundred short-lived objects, and at the default threshold
    (700) collections ran every couple of requests, each walking the young objects again."""
    with open(os.environ[CONFIG_PATH_ENV], "rb") as f:
        config = Config.model_validate(json.loads(f.read()))
    app = create_app(config, replica_id=os.environ.get(REPLICA_ID_ENV))
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    return app
