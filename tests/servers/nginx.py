"""nginx from Debian as a plain process in front of a test server, with the shipped
``deploy/nginx/dockyard-accel.conf`` rendered for it (upstream, port, storage root).

It runs with a temporary prefix (pid file, logs, temp paths) and ``daemon off`` so that
:class:`ServerProcess` stops it by process id like every other test server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.servers.dockyard import ServerProcess

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
        prefix = self.workdir
        (prefix / "server.conf").write_text(render(self.upstream, self.port, self.root))
        # As root, nginx's workers would switch to nobody, who cannot read pytest's 0700 temp dirs.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "\n".join(
            f"    {name}_temp_path {prefix / name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            "error_log stderr warn;\nevents { worker_connections 256; }\n"
            f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n"
            f"    include {prefix / 'server.conf'};\n}}\n"
        )

    def command(self) -> list[str]:
        return [NGINX, "-p", str(self.workdir), "-e", "stderr", "-c", str(self.conf)]

    def start(self, timeout: float = 30.0) -> NginxFront:
        self._spawn(timeout, False)
        return self
