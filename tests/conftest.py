"""Shared fixtures. Folders decide markers: clients/ and interop/ drive real programs, s3/ starts
S3 engines (once per session, on first use)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from dockyard.testing.postgres import PostgresServer, find_bin
from tests.servers.cluster import Cluster
from tests.servers.dockyard import LiveRegistry
from tests.servers.s3 import CephRGW, S3Engine, SeaweedFS

# Property tests assert what holds, never how fast: Hypothesis's default 200 ms deadline per
# example failed `test_page_size` once at load 17 on a shared 2-core machine. Tests that set their
# own budget (tests/fuzzing.py) already say deadline=None.
settings.register_profile("dockyard", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dockyard")

_FOLDER_MARKERS = {
    "clients": ("clients", "live"),
    "interop": ("interop", "live"),
    "live": ("live",),
    "s3": ("s3",),
    "replicas": ("live", "s3"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        folder = parts[parts.index("tests") + 1] if "tests" in parts else ""
        for marker in _FOLDER_MARKERS.get(folder, ()):
            item.add_marker(marker)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No proxy variables, and ``NETRC`` naming a file the test may write (not there yet): for
    the aiohttp clients that honour the environment (``dockyard.client.proxies``)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    return netrc


@pytest.fixture
def live_registry(tmp_path: Path) -> Iterator[LiveRegistry]:
    """A fresh ``dockyard serve`` (2 workers) on its own port and storage root."""
    with LiveRegistry(tmp_path / "registry") as registry:
        yield registry


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Engine]:
    """SeaweedFS (``weed server -s3``) on loopback for the whole session; ``.bucket()`` per test."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    engine = server.start()
    try:
        yield engine
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ceph_rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Engine]:
    """Ceph RGW 16 (monitor, memstore OSD, radosgw) on loopback for the whole session."""
    server = CephRGW(tmp_path_factory.mktemp("ceph"))
    engine = server.start()
    try:
        yield engine
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three replicas on one SeaweedFS bucket and one PostgreSQL, behind HAProxy, per module
    (``tests/servers/cluster.py``): several tests share one start (~15 s). A module's
    ``CLUSTER_CONFIG`` is merged into every replica's configuration."""
    extra = getattr(request.module, "CLUSTER_CONFIG", None)
    deployment = Cluster(tmp_path_factory.mktemp("cluster"), config=extra).start()
    try:
        yield deployment
    finally:
        deployment.stop()
    assert "Traceback" not in deployment.logs(), f"a replica logged a traceback:\n{deployment.logs()}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole run (a plain process, loopback only); each test that needs a
    clean schema takes a database of its own through ``dsn``. The replica cluster starts its own,
    because its outage test stops and restarts it."""
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    print(f"\nPostgreSQL started in {server.started_in:.2f} s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dsn(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres.create_database()
