"""Running the registry under granian: worker processes, TLS, graceful stop on SIGTERM."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import sys
from pathlib import Path

from dockyard.config import CONFIG_PATH_ENV, Config, ConfigError, ignored_sections, split_addr
from dockyard.storage.replicas import REPLICA_ID_ENV
from dockyard.supervisor import PLAN_ENV, ServePlan

log = logging.getLogger("dockyard.server")


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def check_tls_files(config: Config) -> tuple[Path, Path] | None:
    tls = config.http.tls
    if not tls.certificate and not tls.key:
        return None
    if not (tls.certificate and tls.key):
        raise ConfigError("http.tls: both certificate and key are needed to serve HTTPS")
    pair = Path(tls.certificate), Path(tls.key)
    for key, path in zip(("http.tls.certificate", "http.tls.key"), pair, strict=True):
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ConfigError(f"{key}: cannot read {path}")
    return pair


def warn_ignored(config: Config) -> None:
    """Name each section the configuration sets that dockyard accepts but does not act on."""
    for section, why in ignored_sections(config).items():
        log.warning("configuration section accepted but ignored", extra={"section": section, "reason": why})


def config_handoff(config: Config) -> str:
    """Put the validated configuration where worker processes can read it and nobody else sees it,
    and return the path they read it from.

    The configuration carries secrets, so it does not travel in the environment (readable in
    ``/proc/<pid>/environ``, inherited by every process a worker starts, printed by crash
    reporters). It goes into a sealed memory file instead, owned by this process (which becomes the
    serving parent): the workers open it through ``/proc/<parent pid>/fd/<n>``, which only this
    user can, as often as granian starts a worker; it never touches a disk, and it vanishes with
    the parent, however that ends."""
    data = json.dumps(config.model_dump(mode="json")).encode()
    fd = os.memfd_create("dockyard-config", os.MFD_ALLOW_SEALING)  # inheritable: survives exec
    with open(fd, "wb", closefd=False) as f:
        f.write(data)
    seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return f"/proc/{os.getpid()}/fd/{fd}"


def claim_store(config: Config) -> str:
    """Register this replica on its store before any worker starts, and refuse to start
    (``storage.replicas.ReplicaConflict``) beside a live replica it would not be coordinated
    with. Returns the replica's id, which its workers beat under."""
    import asyncio

    from dockyard.coord import create_coordinator
    from dockyard.storage import replicas
    from dockyard.storage.drivers import create_driver

    name, params = config.storage.driver()
    me = replicas.this_replica(database=bool(config.database.dsn), now=0.0)
    if config.storage.inmemory is not None or config.storage.maintenance.readonly.enabled:
        return me.id  # a store of this process alone; a read-only replica writes nothing

    async def run() -> None:
        driver = create_driver(name, params, redirect=False)
        coordinator = create_coordinator(config.database.dsn, name, params)
        try:
            await replicas.claim(driver, me, coordinator.now, machine_local=name == "filesystem")
        finally:
            await coordinator.close()

    try:
        asyncio.run(run())
    except replicas.ReplicaConflict:
        raise
    except Exception as exc:  # the store (or the database) cannot be reached now
        if not config.database.dsn:
            raise ConfigError(
                f"cannot check the store for other replicas ({str(exc)[:300]}): without a database, a "
                "replica starts only after making sure it is alone on its store"
            ) from exc
        # With a database this replica can only collide with a replica that has none: start, and
        # let the heartbeat write the record once the store answers.
        log.warning("cannot check the store for other replicas", extra={"error": str(exc)[:300]})
    return me.id


def serve(config: Config, workers: int) -> None:
    """Validate, then replace this process with the lean serving parent (same pid).

    The parent only supervises granian's workers, so it should not carry what the CLI
    imported to get here (pydantic, YAML, the argument parser): ``exec`` drops all of it.
    glibc's per-thread malloc arenas are capped for the new process image (unless the
    operator chose a value), which keeps the workers' resident memory flat under load.
    """
    from dockyard import log as logsetup

    logsetup.configure(config.log)
    warn_ignored(config)
    host, port = split_addr(config.http.addr)
    tls = check_tls_files(config)
    if config.storage.inmemory is not None and workers > 1:
        log.warning("the inmemory driver is per process; serving it with one worker")
        workers = 1
    driver, params = config.storage.driver()
    if driver not in ("filesystem", "inmemory") and not config.database.dsn and workers > 1:
        # Without a database the coordinator (upload locks and sessions, GC liveness) lives in
        # each process's memory: two workers could write one upload at once.
        log.warning(
            "storage.%s has no coordinator shared between processes without database.dsn; "
            "serving it with one worker",
            driver,
        )
        workers = 1
    log.info(
        "starting dockyard",
        extra={
            "addr": f"{host}:{port}",
            "tls": tls is not None,
            "workers": workers,
            "storage": driver,
            "root": params.get("rootdirectory", "-"),
        },
    )
    debug_host, debug_port = None, 0
    debug = config.http.debug
    if config.http.metrics_enabled and debug.addr is not None:
        debug_host, debug_port = split_addr(debug.addr)
    elif debug.addr is not None:
        log.warning(
            "http.debug.addr serves only the Prometheus metrics, and http.debug.prometheus.enabled "
            "is false: no debug listener"
        )
    plan = ServePlan(
        host=host,
        port=port,
        workers=workers,
        certificate=str(tls[0]) if tls else None,
        key=str(tls[1]) if tls else None,
        minimumtls=config.http.tls.minimumtls,
        draintimeout=int(config.http.draintimeout),
        log_level=config.log.level,
        log_formatter=config.log.formatter,
        log_fields=dict(config.log.fields),
        access_disabled=config.log.accesslog.disabled,
        header_timeout=config.http.timeouts.header,
        debug_host=debug_host,
        debug_port=debug_port,
        metrics_path=debug.prometheus.path,
    )
    env = dict(os.environ)
    env.pop("DOCKYARD_CONFIG_JSON", None)  # as an older dockyard passed it
    env[CONFIG_PATH_ENV] = config_handoff(config)
    env[REPLICA_ID_ENV] = claim_store(config)
    env[PLAN_ENV] = json.dumps(dataclasses.asdict(plan))
    env.setdefault("MALLOC_ARENA_MAX", "2")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "dockyard.supervisor"], env)  # noqa: S606
