"""Several ``dockyard serve`` replicas on one object store and one PostgreSQL, behind HAProxy.

This is the deployment README "Running several replicas" describes, on loopback: SeaweedFS (its
own, so a test may stop it), PostgreSQL as a plain process, N replicas (``storage.s3`` on one bucket
and ``rootdirectory``, ``database.dsn`` on one database, one ``http.secret``, each on its own
port) and HAProxy started with ``deploy/haproxy/haproxy.cfg``, the file the README ships, plus a
backend listing the replicas. Every process is stopped by its process id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx

from dockyard.testing.postgres import PostgresServer, find_bin
from dockyard.testing.processes import stop_group
from tests.servers.dockyard import LiveRegistry, deep_merge, free_port
from tests.servers.s3 import S3Engine, SeaweedFS

HAPROXY_CFG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"
REPLICA_HEADER = "X-Dockyard-Replica"


class HAProxy:
    """HAProxy with the shipped configuration and a backend of ``servers`` (name -> host:port)."""

    def __init__(self, workdir: Path, servers: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.servers = servers
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self, timeout: float = 20.0) -> HAProxy:
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed: run `make debs`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        backend = self.workdir / "replicas.cfg"
        lines = [f"    server {name} {address}" for name, address in self.servers.items()]
        backend.write_text("backend dockyard from registry\n" + "\n".join(lines) + "\n")
        env = {**os.environ, "DOCKYARD_LB_BIND": self.host}
        self._log = open(self.workdir / "haproxy.log", "ab")  # noqa: SIM115 - closed in stop()
        argv = ["haproxy", "-db", "-f", str(HAPROXY_CFG), "-f", str(backend)]
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"haproxy did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / "haproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGTERM, 10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Cluster:
    """The whole deployment: ``lb`` (the load balancer), ``replicas``, ``store``, ``postgres``."""

    def __init__(self, workdir: Path, replicas: int = 3, config: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.count = replicas
        self.extra = config or {}
        self.seaweed = SeaweedFS(workdir / "seaweedfs", gateway_apart=True)
        self.store: S3Engine | None = None
        self.postgres: PostgresServer | None = None
        self.dsn = ""
        self.root = f"/cluster-{uuid.uuid4().hex[:8]}"
        self.secret = uuid.uuid4().hex
        self.replicas: list[LiveRegistry] = []
        self.lb: HAProxy | None = None

    def replica_config(self) -> dict[str, Any]:
        assert self.store is not None
        s3 = self.store.driver_params(self.store.shared, rootdirectory=self.root)
        base: dict[str, Any] = {
            "http": {"secret": self.secret},
            "storage": {"s3": s3, "delete": {"enabled": True}},
            "database": {"dsn": self.dsn},
        }
        return deep_merge(base, self.extra)

    def start(self) -> Cluster:
        bin_dir = find_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: run `make debs`")
        try:
            self.store = self.seaweed.start()
            self.postgres = PostgresServer(bin_dir).start()
            self.dsn = self.postgres.create_database()
            for i in range(self.count):
                config = self.replica_config()
                replica = LiveRegistry(self.workdir / f"replica-{i + 1}", config=config, workers=1)
                replica.config["storage"] = config["storage"]  # not merged with the default root
                self.replicas.append(replica)
            # Started together, as a deployment would (and each start is mostly waiting).
            with ThreadPoolExecutor(len(self.replicas)) as pool:
                list(pool.map(lambda r: r.start(timeout=60), self.replicas))
            servers = {f"r{i + 1}": r.host for i, r in enumerate(self.replicas)}
            self.lb = HAProxy(self.workdir / "haproxy", servers).start()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        assert self.lb is not None
        return self.lb.url

    @property
    def host(self) -> str:
        assert self.lb is not None
        return self.lb.host

    def restart_replica(self, index: int) -> None:
        """Start a stopped (or killed) replica again on its port, with its configuration."""
        self.replicas[index].start(timeout=60)

    def wait_all_up(self, timeout: float = 30.0) -> None:
        """Until the load balancer sends requests to every replica again (after a restart)."""
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        names = {f"r{i + 1}" for i in range(len(self.replicas))}
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                answer = client.get(f"{self.url}/v2/")
                seen.add(answer.headers.get(REPLICA_HEADER, ""))
                if names <= seen:
                    return
                time.sleep(0.05)
        raise RuntimeError(f"the load balancer reached only {sorted(seen)} of {sorted(names)}")

    def logs(self) -> str:
        return "\n".join(f"--- replica {i + 1}\n{r.log()}" for i, r in enumerate(self.replicas))

    def stored_blobs(self) -> dict[str, bytes]:
        """Every blob's data object under the cluster's root: digest -> bytes (small stores)."""
        assert self.store is not None
        client = self.store.client()
        prefix = f"{self.root.strip('/')}/docker/registry/v2/blobs/"
        out: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.store.shared, Prefix=prefix):
            for item in page.get("Contents", ()):
                key: str = item["Key"]
                if key.endswith("/data"):
                    algorithm, _, hexdigest = key[len(prefix) :].split("/")[:3]
                    body = client.get_object(Bucket=self.store.shared, Key=key)["Body"].read()
                    out[f"{algorithm}:{hexdigest}"] = body
        return out

    def stop(self) -> None:
        if self.lb is not None:
            self.lb.stop()
        with ThreadPoolExecutor(max(1, len(self.replicas))) as pool:
            list(pool.map(lambda r: r.stop(), self.replicas))
        if self.postgres is not None:
            self.postgres.stop()
        self.seaweed.stop()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
