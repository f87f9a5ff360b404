"""nginx from Debian as a plain process in front of a test server, with the shipped
``deploy/nginx/dockyard-accel.conf`` rendered for it (upstream, port, storage root).

It runs with a temporary prefix (pid file, logs, temp paths) and ``daemon off`` so that
:class:`ServerProcess` stops it by process id like every other test server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.servers.dockyard import ServerProcess, free_port

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "dockyard-accel.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def render(upstream: str, port: int, root: Path) -> str:
    """The shipped server configuration with the three deployment-specific values replaced; fails
    loudly if the file no longer holds them, so the test keeps testing the file users copy."""
    text = SHIPPED.read_text()
    for old, new in (
        ("server 127.0.0.1:5000;", f"server {upstream};"),
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("alias /var/lib/registry/;", f"alias {root.resolve()}/;"),
    ):
        assert text.count(old) == 1, f"{SHIPPED} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def main_conf(prefix: Path, log_format: str = "") -> str:
    """nginx's main configuration for a test: in the foreground, everything (pid, logs, temp
    paths) under ``prefix``, and ``prefix/server.conf`` included in ``http``; the access log in
    ``log_format`` when one is given."""
    # As root, nginx's workers would switch to nobody, who cannot read pytest's 0700 temp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    fmt = f"    log_format test '{log_format}';\n" if log_format else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        "error_log stderr warn;\nevents { worker_connections 256; }\n"
        f"http {{\n{fmt}    access_log {prefix / 'access.log'}{' test' if log_format else ''};\n{temp}\n"
        f"    include {prefix / 'server.conf'};\n}}\n"
    )


class NginxFront(ServerProcess):
    """``nginx`` proxying to ``upstream`` (``host:port``), serving accel redirects from ``root``."""

    what = "nginx"
    ready_statuses = (200, 401)

    def __init__(self, workdir: Path, upstream: str, root: Path) -> None:
        super().__init__(workdir, None, "nginx.log")
        self.upstream = upstream
        self.root = root
        self.conf = workdir / "nginx.conf"

    def write_config(self) -> None:
        (self.workdir / "server.conf").write_text(render(self.upstream, self.port, self.root))
        self.conf.write_text(main_conf(self.workdir))

    def command(self) -> list[str]:
        return [NGINX, "-p", str(self.workdir), "-e", "stderr", "-c", str(self.conf)]

    def start(self, timeout: float = 30.0) -> NginxFront:
        self._spawn(timeout, False)
        return self


HA_SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "nginx" / "ha.conf"


def render_ha(replicas: list[str], store: str, port: int, s3_port: int, cert: Path, key: Path) -> str:
    """The shipped load balancer configuration of the compose HA deployment with its
    deployment-specific values replaced: the replicas (one ``server`` line each), the object
    store, the two listeners (on loopback) and the certificate; fails loudly if the file no
    longer holds them, so the test keeps testing the file users copy."""
    text = HA_SHIPPED.read_text()
    shipped_servers = [line for line in text.splitlines() if line.strip().startswith("server replica-")]
    assert len(shipped_servers) == 2, f"{HA_SHIPPED}: expected two replica server lines"
    options = shipped_servers[0].split(":5000", 1)[1]  # " max_fails=1 fail_timeout=10s;"
    servers = "\n".join(f"    server {address}{options}" for address in replicas)
    text = text.replace("\n".join(shipped_servers), servers)
    for old, new, count in (
        ("server seaweedfs:8333;", f"server {store};", 1),
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;", 1),
        ("listen 8443 ssl;", f"listen 127.0.0.1:{s3_port} ssl;", 1),
        ("/certs/domain.crt;", f"{cert};", 2),
        ("/certs/domain.key;", f"{key};", 2),
    ):
        assert text.count(old) == count, f"{HA_SHIPPED} no longer contains {old!r} {count} times"
        text = text.replace(old, new)
    return text


class NginxBalancer(ServerProcess):
    """nginx as the load balancer of several replicas (``deploy/compose/nginx/ha.conf``): TLS on
    ``port``, the object store behind it on ``s3_port``, upstream logged per request."""

    what = "nginx"
    ready_statuses = (200, 401)

    def __init__(self, workdir: Path, replicas: list[str], store: str, cert: Path, key: Path) -> None:
        super().__init__(workdir, None, "nginx.log")
        self.replicas, self.store, self.cert, self.key = replicas, store, cert, key
        self.s3_port = free_port()
        self.conf = workdir / "nginx.conf"
        self.tls = True

    def write_config(self) -> None:
        server = render_ha(self.replicas, self.store, self.port, self.s3_port, self.cert, self.key)
        (self.workdir / "server.conf").write_text(server)
        self.conf.write_text(main_conf(self.workdir, "$request_method $uri $status $upstream_addr"))

    def upstreams(self) -> list[str]:
        """The replica each logged request went to, in order."""
        path = self.workdir / "access.log"
        return [line.split()[-1] for line in path.read_text().splitlines()] if path.exists() else []

    def command(self) -> list[str]:
        return [NGINX, "-p", str(self.workdir), "-e", "stderr", "-c", str(self.conf)]

    def start(self, timeout: float = 30.0) -> NginxBalancer:
        self._spawn(timeout, False)
        return self
