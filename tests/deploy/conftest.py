"""The deployment tests' shared parts: a private dockerd that can run networked containers, a Debian
base image built offline from Debian's packages, and the dockyard image built on it.

No Docker Hub here: the base is a ``mmdebstrap --variant=minbase`` root with python3, python3-venv
and binutils (the Dockerfile's builder stage strips extension modules with it), imported with
``docker import``; the dockerfile is built on it with the wheels of dockyard's dependencies
downloaded on this machine (``PIP_ARGS=--no-index``), since nothing inside a build reaches PyPI
through this machine's TLS interception. The stand-ins for the compose files' third-party images
are built on the same root: mmdebstrap's last hook has apt download, for that root, Debian's
postgresql and nginx packages, which services.Dockerfile installs as one layer (one essential set
unpacked instead of two roots). The rootfs, those packages and the wheels are cached in
``DOCKYARD_DEPLOY_CACHE`` (default ``~/.cache/dockyard-deploy``) under a key of what made them, and
the private dockerd's state too, so only the first session pays for them. That first session
starts mmdebstrap, pip download and the pipx install in background threads as soon as collection
shows they are needed, so they overlap with the tests that run before tests/deploy, and the
stand-ins build while the dockyard image does.

The dockerd keeps dockyard's other tests' settings (no iptables, no userland proxy, no docker0)
but containers join user-defined bridge networks in 172.31.0.0/16, in network namespaces the test
made, and the tests talk to them there. Ports are published on 127.0.0.1 only (dockerd holds a
published port open even without a proxy). That range is an
``--insecure-registry``, so docker speaks TLS to the registries without trusting their
self-signed certificates.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.clients.conftest import Docker, _read_pid, dockerd, run
from tests.clients.images import layer_tar

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
SUBNET = "172.31.0.0/16"
NETWORK = "dyci"
SUITE = "bookworm"
# The stand-ins' Debian packages (no Docker Hub here), installed as a layer on dockyard's base.
STANDIN_PACKAGES = ["postgresql", "nginx"]
# One mmdebstrap root for everything: dockyard's base (python3 and its venv module; binutils for
# the builder stage's `strip`). Its last hook has apt download, for that very root, the packages
# the stand-ins add on top (into $DYCI_DEBS), so they are installed as one layer of an image built
# on it (services.Dockerfile) rather than on a second root: one essential set unpacked, not two.
MMDEBSTRAP = [
    "mmdebstrap", "--variant=minbase",
    "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--include=python3,python3-venv,binutils",
    '--customize-hook=mkdir -p "$DYCI_DEBS/partial" && APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get '
    '--download-only --yes --no-install-recommends -o Dir::Cache::Archives="$DYCI_DEBS" install '
    + " ".join(STANDIN_PACKAGES),
    SUITE,
]  # fmt: skip
# What the image build sees: the Dockerfile's COPY sources, nothing else of the checkout.
CONTEXT = ["Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "src", "deploy/image"]
# The time each part took, printed at the end of the session (``-s`` or the summary).
TIMES: dict[str, float] = {}
FACTS: dict[str, object] = {}
# The slow preparations (mmdebstrap, pip download, dockerd, docker import, the image and stand-in
# builds, the pipx install) start in the background as soon as collection shows they are needed
# and overlap with the rest of the suite (tests/deploy runs last). A worker per job: some wait on
# others' results, so fewer workers than jobs could deadlock.
_BACKGROUND = ThreadPoolExecutor(max_workers=8, thread_name_prefix="deploy-prep")


def cache_dir() -> Path:
    path = Path(os.environ.get("DOCKYARD_DEPLOY_CACHE", "~/.cache/dockyard-deploy")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@dataclass
class Timer:
    name: str

    def __enter__(self) -> Timer:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        TIMES[self.name] = TIMES.get(self.name, 0.0) + time.monotonic() - self.start


@dataclass(frozen=True)
class Root:
    tarball: Path  # the root filesystem, for ``docker import``
    debs: Path  # the stand-ins' packages, downloaded for that root


def _build_root() -> Root:
    key = _key(*MMDEBSTRAP)
    root = Root(cache_dir() / f"base-{key}.tar", cache_dir() / f"base-{key}-debs")
    if not (root.tarball.exists() and root.debs.is_dir()):
        # Names of this process's own: another session on the machine may build the same key.
        partial = root.tarball.with_suffix(f".{os.getpid()}.partial.tar")  # mmdebstrap: format by name
        debs = root.debs.with_name(f"{root.debs.name}.{os.getpid()}.partial")
        shutil.rmtree(debs, ignore_errors=True)
        with Timer("mmdebstrap (first run only)"):
            run([*MMDEBSTRAP, partial], timeout=1200, env={**os.environ, "DYCI_DEBS": str(debs)})
        shutil.rmtree(debs / "partial")
        (debs / "lock").unlink(missing_ok=True)
        _publish(debs, root.debs)
        _publish(partial, root.tarball)
    return root


def _publish(partial: Path, final: Path) -> None:
    """Rename a finished build into the cache, unless another session already put one there."""
    try:
        partial.rename(final)
    except OSError:  # a non-empty directory of the same name: the other session's, as good
        shutil.rmtree(partial)


# Besides dockyard's dependencies: its build backend, and the pip pipx puts in its shared venv.
EXTRA_WHEELS = ["setuptools>=77", "pip"]


def _build_wheelhouse() -> Path:
    pyproject = (REPO / "pyproject.toml").read_bytes()
    path = cache_dir() / f"wheels-{_key(pyproject, sys.version, *EXTRA_WHEELS)}"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        with Timer("pip download (first run only)"):
            run([sys.executable, "-m", "pip", "download", "-q", "-d", partial, f"{REPO}[postgres,s3]", *EXTRA_WHEELS],
                timeout=900)  # fmt: skip
        for own in partial.glob("dockyard-*"):
            own.unlink()
        _publish(partial, path)
    return path


_JOBS: dict[str, Future[Any]] = {}
_JOBS_LOCK = threading.Lock()


def _started(name: str, what: Callable[[], T]) -> Future[T]:
    """The background job ``name``, started with ``what`` by the first caller."""
    with _JOBS_LOCK:
        if name not in _JOBS:
            _JOBS[name] = _BACKGROUND.submit(what)
        return _JOBS[name]


def _pipx_install() -> Path:
    wheels = wheelhouse()
    tmp = Path(tempfile.mkdtemp(prefix="dyci-pipx-"))
    _TEMPORARY.append(tmp)
    with Timer("pipx: build the wheel, install it (in the background)"):
        # From a copy, so the build leaves nothing in the checkout; the isolated build environment
        # takes setuptools from the cached wheels too.
        source = tmp / "source"
        shutil.copytree(
            REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
        run([sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", source],
            env=offline, timeout=600, cwd=tmp)  # fmt: skip
        wheel = next((tmp / "dist").glob("dockyard-*.whl"))
        env = {"PIPX_HOME": str(tmp / "pipx"), "PIPX_BIN_DIR": str(tmp / "bin"), "PATH": "/usr/bin:/bin"}
        pip_args = f"--no-index --find-links {wheels}"
        run([sys.executable, "-m", "pipx", "install", "--pip-args", pip_args, wheel], env=env, timeout=600)
    return tmp / "bin" / "dockyard"


_TEMPORARY: list[Path] = []


def start_preparations(*, pipx: bool = False, images: bool = False) -> None:
    """Start building the root and downloading the wheels (with ``pipx``, the pipx install that
    needs them; with ``images``, dockerd and the image builds on the root), if not started yet."""
    _started("root", _build_root)
    _started("wheels", _build_wheelhouse)
    if pipx:
        _started("pipx", _pipx_install)
    if images:
        _started("dockyard image", _build_dockyard_image)


def pipx_install() -> Path:
    """``pipx install`` of a wheel freshly built from the checkout into a fresh PIPX_HOME, its
    dependencies from :func:`wheelhouse`; the installed ``dockyard`` command."""
    start_preparations(pipx=True)
    return _started("pipx", _pipx_install).result()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """tests/deploy runs last, so the builds it waits for (started when collection finishes) run
    while the rest of the suite does. The first test that needs an image waits, in its setup, for
    what is not done yet, which pytest-timeout counts against that test: give those tests an hour
    instead of the suite's ten minutes."""
    here = Path(__file__).parent
    deploy = [item for item in items if item.path.is_relative_to(here)]
    for item in deploy:
        if item.get_closest_marker("builds") is not None:
            item.add_marker(pytest.mark.timeout(3600))
    items[:] = [item for item in items if not item.path.is_relative_to(here)] + deploy


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow preparations as soon as the session is known to need them (the selected
    tests, after ``-m`` and ``-k``): mmdebstrap, pip and pipx spend much of their time waiting on
    the network and the disk, and the image builds then run beside the other tests."""
    if session.config.option.collectonly:
        return
    needs = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    if {"deploy_docker", "pipx_dockyard"} & needs:
        start_preparations(pipx="pipx_dockyard" in needs, images="deploy_docker" in needs)


def pytest_sessionfinish() -> None:
    for job in _JOBS.values():
        job.cancel()
    _BACKGROUND.shutdown(wait=True)  # a job still running is waited for, never left behind
    _DOCKERD.close()  # if no test got to use it (stopped by then when one did)
    for path in _TEMPORARY:
        shutil.rmtree(path, ignore_errors=True)


def rootfs() -> Root:
    """The Debian root and the stand-ins' packages, built by mmdebstrap once per key (its command
    line)."""
    start_preparations()
    return _started("root", _build_root).result()


def wheelhouse() -> Path:
    """Wheels of dockyard's dependencies (extras postgres and s3) and of :data:`EXTRA_WHEELS`,
    once per pyproject.toml."""
    start_preparations()
    return _started("wheels", _build_wheelhouse).result()


# The session's dockerd, started by a background job and stopped by deploy_docker's teardown (or
# at the session's end if no test used it).
_DOCKERD = contextlib.ExitStack()


def _start_dockerd() -> Docker:
    """A private dockerd with a bridge in :data:`SUBNET` (see the module's docstring). Its state is
    kept in the cache between sessions, so an unchanged image layer (the base, the dependencies) is
    not built again; while another session on this machine holds that state, this one uses a
    temporary one instead (and builds everything)."""
    root = cache_dir() / "dockerd"
    root.mkdir(exist_ok=True)
    lock = _DOCKERD.enter_context(open(cache_dir() / "dockerd.lock", "w"))  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the stack closes the file
    except BlockingIOError:
        root = Path(tempfile.mkdtemp(prefix="dyci-dockerd-"))
        _TEMPORARY.append(root)
    stale = _read_pid(root / "dockerd.pid")
    if stale is not None and Path(f"/proc/{stale}").exists():
        pytest.fail(f"a dockerd ({stale}) still runs on {root}", pytrace=False)
    # No docker0 (its name is the machine's, shared with any other dockerd): containers join
    # user-defined networks, whose bridges get names of their own.
    extra = [
        "--bridge=none",
        f"--default-address-pool=base={SUBNET},size=24",
        f"--insecure-registry={SUBNET}",
    ]
    with Timer("dockerd start"):
        return _DOCKERD.enter_context(dockerd(root, *extra))


@pytest.fixture(scope="session")
def deploy_docker() -> Iterator[Docker]:
    """The session's private dockerd (:func:`_start_dockerd`); containers a test left are removed
    with their volumes at the end, then dockerd stops."""
    docker = _started("dockerd", _start_dockerd).result()
    try:
        yield docker
    finally:
        # The image builds may still run if every test that needed them failed early.
        for name in ("standins", "dockyard image"):
            if name in _JOBS:
                with contextlib.suppress(Exception):
                    _JOBS[name].result()
        leftovers = docker("ps", "-aq", check=False).stdout.split()
        if leftovers:
            docker("rm", "-f", "-v", *leftovers, check=False)
        docker("network", "rm", NETWORK, check=False)
        # The test images pushed and pulled (the base, dockyard's image and the stand-ins stay).
        refs = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        made = [r for r in refs if not r.startswith(("dockyard:", "dockyard-ci-"))]
        if made:
            docker("rmi", "-f", *made, check=False)
        docker("image", "prune", "-f", check=False)
        docker("builder", "prune", "-f", "--keep-storage", "3gb", check=False)
        _DOCKERD.close()


@pytest.fixture(scope="session")
def network(deploy_docker: Docker) -> str:
    """The user-defined network the image and Helm tests run containers on."""
    deploy_docker("network", "create", "--subnet", str(free_subnet()), NETWORK)
    return NETWORK


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in the upper half of :data:`SUBNET` that no route on this machine covers yet. Not a
    fixed one: another deployment test session on the machine (another dockerd) would make a
    bridge with the same subnet, and the host's traffic to it would go to one of the two. dockerd
    allocates its own networks from the bottom of the pool, skipping routed ones."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    used = [ipaddress.ip_network(line.split()[0], strict=False) for line in routes.splitlines()
            if line and line.split()[0][0].isdigit()]  # fmt: skip
    pool = list(ipaddress.IPv4Network(SUBNET).subnets(new_prefix=24))
    free = [net for net in pool[len(pool) // 2 : -1] if not any(net.overlaps(u) for u in used)]
    return random.choice(free)


@dataclass(frozen=True)
class BuiltImage:
    name: str
    base: str
    size: int  # bytes, the whole image
    base_size: int


def image_size(docker: Docker, name: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", name).stdout)


def import_rootfs(docker: Docker, tarball: Path, repository: str) -> str:
    """``docker import`` of a cached root, tagged with its cache key."""
    name = f"{repository}:{tarball.stem.rsplit('-', 1)[1]}"
    if docker("image", "inspect", name, check=False).returncode != 0:  # kept from an earlier session?
        with Timer(f"docker import {repository}"):
            docker("import", tarball, name, timeout=600)
    return name


def _import_base() -> str:
    """The mmdebstrap root, imported; building the stand-ins on it starts too."""
    docker = _started("dockerd", _start_dockerd).result()
    base = import_rootfs(docker, rootfs().tarball, "dockyard-ci-base")
    _started("standins", lambda: _build_standins(docker, base))
    return base


@pytest.fixture(scope="session")
def base_image(deploy_docker: Docker) -> str:
    return _started("base", _import_base).result()


STANDINS = Path(__file__).parent / "standins"


def _build_standins(docker: Docker, base: str) -> dict[str, str]:
    """The stand-ins for postgres:16, nginx:1.27 and chrislusf/seaweedfs:4.48, as the compose
    files' ``*_IMAGE`` variables: Debian's packages as one layer on ``base`` (services.Dockerfile),
    the images on that, and the pinned ``weed`` binary on ``base`` itself."""
    from tests.servers.s3 import WEED, SeaweedFS

    SeaweedFS.verify_binary()
    tag = base.split(":", 1)[1]
    services = f"dockyard-ci-services:{tag}"
    images = {
        name.upper() + "_IMAGE": f"dockyard-ci-{name}:{tag}" for name in ("postgres", "nginx", "seaweedfs")
    }
    with Timer("stand-in images (in the background)"), tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        for item in STANDINS.iterdir():
            shutil.copy2(item, context / item.name)
        shutil.copy2(WEED, context / "weed")
        build = ["build", "--network", "none", "--build-arg"]
        docker(*build, f"BASE_IMAGE={base}", "-t", services, "-f", context / "services.Dockerfile",
               rootfs().debs, timeout=900)  # fmt: skip
        for name, image in images.items():
            dockerfile = context / f"{name.removesuffix('_IMAGE').lower()}.Dockerfile"
            on = base if name == "SEAWEEDFS_IMAGE" else services
            docker(*build, f"BASE_IMAGE={on}", "-t", image, "-f", dockerfile, context, timeout=600)
    return images


@pytest.fixture(scope="session")
def standins(deploy_docker: Docker, base_image: str) -> dict[str, str]:
    """The stand-in images (see :func:`_build_standins`), once their background build is done."""
    return _started("standins", lambda: _build_standins(deploy_docker, base_image)).result()


def build_context(target: Path) -> Path:
    """The Dockerfile's sources copied out of the checkout, plus the cached wheels."""
    for rel in CONTEXT:
        src, dst = REPO / rel, target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.whl"))
        else:
            shutil.copy2(src, dst)
    for wheel in wheelhouse().iterdir():
        shutil.copy2(wheel, target / "deploy/image/wheels" / wheel.name)
    return target


def git_revision() -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def _build_dockyard_image() -> BuiltImage:
    """``docker build --network host`` of the repository's Dockerfile on the Debian base."""
    docker = _started("dockerd", _start_dockerd).result()
    base = _started("base", _import_base).result()
    context = Path(tempfile.mkdtemp(prefix="dyci-context-"))
    _TEMPORARY.append(context)
    build_context(context)
    name = "dockyard:ci"
    with Timer("docker build (in the background)"):
        docker(
            "build", "--network", "host", "-t", name,
            "--build-arg", f"BASE_IMAGE={base}", "--build-arg", "PIP_ARGS=--no-index",
            "--build-arg", f"REVISION={git_revision()}", context,
            timeout=1200,
        )  # fmt: skip
    built = BuiltImage(name, base, image_size(docker, name), image_size(docker, base))
    FACTS["image size (MB)"] = round(built.size / 1e6, 1)
    FACTS["added on top of the base (MB)"] = round((built.size - built.base_size) / 1e6, 1)
    return built


@pytest.fixture(scope="session")
def dockyard_image(deploy_docker: Docker) -> BuiltImage:
    """The image :func:`_build_dockyard_image` built in the background."""
    return _started("dockyard image", _build_dockyard_image).result()


# --- helpers the tests share --------------------------------------------------------------------


def container_ip(docker: Docker, container: str, network: str | None = None) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    if network is not None:
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
    address = docker("inspect", "--format", fmt, container).stdout.split()[0]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(SUBNET), address
    return address


def self_signed(directory: Path, *names: str) -> tuple[Path, Path]:
    """A certificate and key (PEM) for ``names`` (DNS names or IP addresses), readable by all so
    a container's non-root user can read the mounted copies."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "domain.crt", directory / "domain.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for path in (directory, cert_path, key_path):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return cert_path, key_path


def trusting(cert: Path) -> ssl.SSLContext:
    """A client context that trusts ``cert`` (self-signed: its own CA) for any host name: the
    tests reach containers by addresses known only once they run."""
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    return context


def htpasswd(path: Path, user: str, password: str) -> Path:
    import bcrypt

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}\n")
    path.chmod(0o644)
    path.parent.chmod(0o755)
    return path


def local_image(docker: Docker, tmp: Path, name: str, message: str) -> str:
    """A busybox image with ``/hello.txt`` made with ``docker import`` (nothing to pull)."""
    tar = tmp / f"{message}.tar"
    tar.write_bytes(layer_tar({"hello.txt": message.encode()}))
    docker("import", "--change", 'CMD ["/bin/busybox", "cat", "/hello.txt"]', tar, name)
    return name


def push_pull(docker: Docker, image: str, ref: str) -> None:
    """Push ``image`` as ``ref``, forget it, pull it back and check it is the same image."""
    image_id = docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    docker("tag", image, ref)
    docker("push", ref)
    docker("rmi", ref)
    docker("pull", ref)
    assert docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == image_id


def wait_for(check: object, what: str, timeout: float = 300.0) -> None:
    """Poll ``check()`` until it is true (a readiness wait, never an assertion about time; generous,
    as a machine shared with other work can take minutes to start a container's Python)."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the last error is shown when it never gets ready
            last = exc
        time.sleep(0.5)
    pytest.fail(f"{what} not ready after {timeout:.0f} s (last error: {last})", pytrace=False)


def running_containers(docker: Docker) -> list[str]:
    return docker("ps", "-q").stdout.split()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMES and not FACTS:
        return
    terminalreporter.section("deployment tests: times and facts")
    for name, seconds in TIMES.items():
        terminalreporter.write_line(f"{name}: {seconds:.1f} s")
    for name, value in FACTS.items():
        terminalreporter.write_line(f"{name}: {value}")
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "deploy.json").write_text(json.dumps({"times": TIMES, "facts": FACTS}, indent=2))
