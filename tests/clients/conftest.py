"""Fixtures for the real-client matrix: a registry per module, a private dockerd, private containers-tools state.

dockerd gets its own data/exec roots and socket under pytest's temp dir and is stopped by its pidfile;
podman/skopeo/buildah get private CONTAINERS_* configuration and storage. (Left outside: empty state dirs
the engines create under /run, and skopeo's blob-info cache, fixed at /var/lib/containers/cache for root.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.clients.images import Image, build_image, busybox_layer, layer_tar
from tests.servers.dockyard import LiveRegistry

# Debian's docker.io CLI (20.10, matching the daemon); another docker CLI may come earlier on PATH.
DOCKER_CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 180,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client; on ``check`` a non-zero exit fails the test showing its output."""
    proc = subprocess.run(
        [str(a) for a in argv],
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}",
            pytrace=False,
        )
    return proc


def make_image(message: str, *, arch: str = "amd64", docker: bool = False) -> Image:
    """busybox layer + a small layer with ``/hello.txt`` = ``message`` (unique per test)."""
    return build_image(
        [busybox_layer(), layer_tar({"hello.txt": message.encode()}, busybox=False)],
        arch=arch,
        docker=docker,
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    """One ``dockyard serve`` per test module."""
    live = LiveRegistry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield live
    finally:
        live.stop()
    log = live.log()
    assert "Traceback" not in log, f"dockyard logged a traceback:\n{log}"
    errors = [line for line in log.splitlines() if '"status": 5' in line]
    assert not errors, "dockyard answered 5xx:\n" + "\n".join(errors)


# --- Docker engine ---------------------------------------------------------------------------------


@dataclass
class Docker:
    """A private dockerd; call it like the ``docker`` CLI."""

    root: Path
    env: dict[str, str]

    @property
    def containerd_socket(self) -> Path:
        return self.root / "exec" / "containerd" / "containerd.sock"

    def __call__(
        self, *args: str | Path, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return run([DOCKER_CLI, *args], env=self.env, check=check, timeout=timeout)

    def ctr(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ctr`` against the containerd that this dockerd started, in a test namespace."""
        return run(
            ["ctr", "--address", self.containerd_socket, "--namespace", "dockyard-tests", *args],
            env=self.env,
            check=check,
        )

    def content(self, digest: str) -> bytes:
        """The bytes of ``digest`` in containerd's content store (``ctr content get``)."""
        argv = ["ctr", "--address", str(self.containerd_socket), "--namespace", "dockyard-tests"]
        proc = subprocess.run([*argv, "content", "get", digest], capture_output=True, check=False, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return proc.stdout


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def dockerd(root: Path, *extra: str) -> Iterator[Docker]:
    """Start dockerd privately under ``root`` (own roots, socket, no networking changes unless
    ``extra`` flags ask); SIGTERM it by pidfile on exit."""
    (root / "cli").mkdir(parents=True, exist_ok=True)
    pidfile = root / "dockerd.pid"
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{root}/docker.sock",
        "DOCKER_CONFIG": str(root / "cli"),
        "DOCKER_BUILDKIT": "1",
    }
    argv = [
        "dockerd",
        "--data-root", root / "root",
        "--exec-root", root / "exec",
        "--pidfile", pidfile,
        "-H", f"unix://{root}/docker.sock",
        "--storage-driver=overlay2",
        "--iptables=false", "--ip6tables=false",
        "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
        *(extra or ("--bridge=none",)),
    ]  # fmt: skip
    with open(root / "dockerd.log", "ab") as log:
        proc = subprocess.Popen(
            [str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    client = Docker(root, env)
    try:
        deadline = time.monotonic() + 60
        while client("version", check=False, timeout=20).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start:\n{(root / 'dockerd.log').read_text()}", pytrace=False)
            time.sleep(0.3)
        yield client
    finally:
        containerd_pid = _read_pid(root / "exec" / "containerd" / "containerd.pid")
        pid = _read_pid(pidfile) or proc.pid
        if proc.poll() is None:
            os.kill(pid, signal.SIGTERM)  # dockerd stops its own containerd
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if containerd_pid is not None and not _wait_gone(containerd_pid, 20):
            with contextlib.suppress(ProcessLookupError):
                os.kill(containerd_pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """A private dockerd for the session (see :func:`dockerd`)."""
    with dockerd(tmp_path_factory.mktemp("dockerd")) as client:
        yield client


# --- podman / skopeo / buildah ---------------------------------------------------------------------


@dataclass
class ContainersTools:
    """Private configuration and storage for podman, skopeo and buildah (containers/image + storage)."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, tool: str, *args: str | Path, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run([tool, *args], env=self.env, check=check, cwd=cwd)


def _containers_tools(root: Path) -> ContainersTools:
    for sub in ("graph", "run", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    (root / "registries.conf").write_text(
        'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
    )
    (root / "containers.conf").write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
        'netns = "none"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{root}/events.log"\n'
        f'tmp_dir = "{root}/tmp"\n'
        'lock_type = "file"\n'
    )
    (root / "auth.json").write_text('{"auths": {}}')
    env = {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "REGISTRY_AUTH_FILE": str(root / "auth.json"),
        "TMPDIR": str(root / "tmp"),
    }
    return ContainersTools(root, env)


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainersTools]:
    """podman/skopeo/buildah with state private to the module; containers removed at the end."""
    env = _containers_tools(tmp_path_factory.mktemp("containers"))
    try:
        yield env
    finally:
        if shutil.which("buildah"):
            env("buildah", "rm", "--all", check=False)
        if shutil.which("podman"):
            env("podman", "rm", "--all", "--force", check=False)
