"""Starting and stopping the two registries on loopback, each with a fresh storage root."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.cgroups import Hierarchy, MemoryCgroup
from bench.fronts import ACCEL_LOCATION, TLSFiles, nginx_config
from bench.httpclient import Connection, HTTPFailure
from bench.procstat import group_cpu_seconds, group_pids
from bench.workers import answering
from dockyard.testing.processes import stop_group

DOCKYARD = "dockyard"
DISTRIBUTION = "distribution"
NAMES = (DOCKYARD, DISTRIBUTION)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_dockyard() -> str:
    beside = Path(sys.executable).with_name("dockyard")
    if beside.exists():
        return str(beside)
    repo_venv = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "dockyard"
    if repo_venv.exists():
        return str(repo_venv)
    found = shutil.which("dockyard")
    if not found:
        raise SystemExit("bench: cannot find the dockyard executable (make venv)")
    return found


def find_distribution() -> str:
    found = shutil.which("docker-registry")
    if not found:
        raise SystemExit("bench: docker-registry (CNCF distribution 2.8.2) is not installed (make debs)")
    return found


def distribution_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stdout or out.stderr).strip()


class Server:
    """One registry process group: ``start()`` on a fresh port, ``stop()`` by pid.

    ``tls`` makes the registry terminate TLS itself with that certificate. ``nginx`` (dockyard
    only) puts nginx in front with the shipped accelerated-download configuration: clients talk
    to nginx on ``port``, dockyard listens on a port of its own with ``http.accel`` set, and
    nginx's processes count as the server's (CPU and memory)."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        root: Path,
        *,
        binary: str,
        workers: int,
        fsync: bool,
        tls: TLSFiles | None = None,
        nginx: str | None = None,
        webhook: str | None = None,
        metrics: bool | None = None,
        kind: str | None = None,
        cgroups: Hierarchy | None = None,
    ) -> None:
        self.name = name
        # Which registry runs: ``name`` unless a slot holds the other (``--baseline``: dockyard
        # in distribution's slot, to measure what a setting costs dockyard itself).
        self.kind = kind or name
        self.workdir = workdir
        self.root = root
        self.binary = binary
        self.workers = workers
        self.fsync = fsync
        self.tls = tls
        self.nginx = nginx
        # --observe: Prometheus metrics on a debug listener and one webhook endpoint (this URL)
        # that gets every event, pulls included; the same for both registries. ``metrics``
        # alone: the debug listener without an endpoint (by default, with one).
        self.webhook = webhook
        self.metrics = bool(webhook) if metrics is None else metrics
        self.debug_port = free_port() if self.metrics else 0
        self.port = free_port()
        self.backend_port = free_port() if nginx else self.port
        self.proc: subprocess.Popen[bytes] | None = None
        self.front: subprocess.Popen[bytes] | None = None
        # The server's own memory cgroup (nginx in front joins it too), made by start().
        self.cgroups = cgroups
        self.cgroup: MemoryCgroup | None = None
        self.log_path = workdir / f"{name}.log"

    @property
    def pgid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.proc.pid

    @property
    def pgids(self) -> list[int]:
        """Every process group serving: the registry's, and nginx's in front of it."""
        return [self.pgid] + ([self.front.pid] if self.front is not None else [])

    def cpu_seconds(self) -> float:
        return sum(group_cpu_seconds(g) for g in self.pgids)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url_for(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def connect(self, timeout: float = 300.0, port: int | None = None) -> Connection:
        return Connection(
            port or self.port, timeout=timeout, cafile=self.tls.certificate if self.tls else None
        )

    def config(self) -> dict[str, Any]:
        filesystem: dict[str, Any] = {"rootdirectory": str(self.root)}
        if self.kind == DOCKYARD:
            filesystem["fsync"] = self.fsync
        http: dict[str, Any] = {"addr": f"127.0.0.1:{self.backend_port}"}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls.certificate), "key": str(self.tls.key)}
        if self.nginx:
            http["accel"] = {"kind": "nginx", "location": ACCEL_LOCATION}
        observe: dict[str, Any] = {}
        if self.metrics:
            http["debug"] = {"addr": f"127.0.0.1:{self.debug_port}", "prometheus": {"enabled": True}}
        if self.webhook:
            endpoint = {"name": "bench", "url": self.webhook, "timeout": "5s", "threshold": 5}
            endpoint["backoff"] = "1s"
            observe["notifications"] = {"endpoints": [endpoint]}
        return observe | {
            "version": "0.1",
            # Identical settings for both: no access log, no per-request info logging.
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "http": http,
            "storage": {
                "filesystem": filesystem,
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
        }

    def command(self, config_path: Path) -> list[str]:
        if self.kind == DOCKYARD:
            return [self.binary, "serve", "--config", str(config_path), "--workers", str(self.workers)]
        return [self.binary, "serve", str(config_path)]

    def start(self, timeout: float = 60.0) -> None:
        config_path = self.workdir / f"{self.name}.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        command = self.command(config_path)
        if self.cgroups is not None:
            self.cgroup = self.cgroups.create(self.name)
            command = self.cgroup.wrap(command)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        expected = self.workers + 1 if self.kind == DOCKYARD else 1
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with self.connect(timeout=2, port=self.backend_port) as conn:
                    ok = conn.request("GET", "/v2/").status == 200
            except (HTTPFailure, OSError):
                ok = False
            if ok and len(group_pids(self.pgid)) >= expected:
                self._wait_for_every_worker(deadline)
                if self.nginx:
                    self._start_front(deadline)
                # A few requests on fresh connections, through the front if there is one.
                for _ in range(4 * self.workers):
                    with self.connect(timeout=5) as conn:
                        conn.request("GET", "/v2/").expect(200, what=f"{self.name} warm-up")
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not come up within {timeout}s: {self.log_tail()}")

    def _start_front(self, deadline: float) -> None:
        assert self.nginx is not None
        conf = nginx_config(self.workdir / f"{self.name}-nginx", self.backend_port, self.port, self.root)
        command = [self.nginx, "-p", str(conf.parent), "-e", "stderr", "-c", str(conf)]
        with open(self.log_path, "ab") as log:
            self.front = subprocess.Popen(
                self.cgroup.wrap(command) if self.cgroup is not None else command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        while time.monotonic() < deadline:
            if self.front.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.front.returncode}: {self.log_tail()}")
            try:
                with self.connect(timeout=2) as conn:
                    if conn.request("GET", "/v2/").status == 200:
                        return
            except (HTTPFailure, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"nginx did not come up: {self.log_tail()}")

    def _wait_for_every_worker(self, deadline: float) -> None:
        """Until each worker process has answered a request itself (see ``bench.workers``): a
        worker still importing would leave the first figures measured on the others."""
        workers = [p for p in group_pids(self.pgid) if p != self.pgid] if self.kind == DOCKYARD else []
        seen: set[int] = set()
        while len(workers) > 1 and not seen.issuperset(workers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: workers {sorted(set(workers) - seen)} never answered")
            connect = functools.partial(self.connect, 5.0, self.backend_port)
            seen |= answering(connect, self.backend_port, workers, 4 * self.workers)
            time.sleep(0.05)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the pid we started; SIGKILL to its own process group if it lingers."""
        front, self.front = self.front, None
        if front is not None:
            stop_group(front, signal.SIGTERM, timeout)
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, signal.SIGTERM, timeout)
        cgroup, self.cgroup = self.cgroup, None
        if cgroup is not None:
            cgroup.remove()
