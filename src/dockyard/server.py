"""Running the registry under granian: worker processes, TLS, graceful stop on SIGTERM."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from pathlib import Path

from dockyard.config import CONFIG_ENV, Config, ConfigError, split_addr

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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(config: Config, workers: int) -> None:
    from granian.constants import Interfaces, Loops, SSLProtocols
    from granian.log import LogLevels
    from granian.server import Server

    from dockyard import log as logsetup

    logsetup.configure(config.log)
    host, port = split_addr(config.http.addr)
    tls = check_tls_files(config)
    if config.storage.inmemory is not None and workers > 1:
        log.warning("the inmemory driver is per process; serving it with one worker")
        workers = 1
    os.environ[CONFIG_ENV] = json.dumps(config.model_dump(mode="json"))
    driver, params = config.storage.driver()
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
    server = Server(
        "dockyard.app:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        factory=True,
        log_enabled=True,
        log_level=LogLevels(config.log.level),
        log_access=False,
        ssl_cert=tls[0] if tls else None,
        ssl_key=tls[1] if tls else None,
        ssl_protocol_min=SSLProtocols(config.http.tls.minimumtls),
        workers_kill_timeout=int(config.http.draintimeout) or None,
        backlog=2048,
    )
    server.serve()
