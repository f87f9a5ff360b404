"""The pull-through cache with real clients and real upstreams, all on loopback.

Upstreams: distribution 2.8.2 (Debian's ``docker-registry``) with htpasswd, as ``docker.io`` (the
Docker Hub upstream: unprefixed names go there), and a second dockyard in token mode (the Docker
token flow) as ``ghcr.io``, used at once by one proxying dockyard. Clients: skopeo by prefixed name,
podman with a ``registries.conf`` mirror, docker with ``registry-mirrors``, ctr with ``--hosts-dir``.
The last tests stop the upstreams.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.auth.live import USERS, AuthRegistry, auth_registry
from tests.clients.conftest import ContainersTools, Docker, _read_pid, _wait_gone, make_image, run
from tests.clients.images import (
    Image,
    build_image,
    busybox_layer,
    layer_tar,
    read_oci_layout,
    write_oci_layout,
)
from tests.interop.distribution import DistributionRegistry
from tests.servers.dockyard import LiveRegistry

pytestmark = [pytest.mark.clients, pytest.mark.interop, pytest.mark.live]
DIST_USER, DIST_PASSWORD = "mirror", "dist-pw-7"
NO_TLS_SRC = "--src-tls-verify=false"


@dataclass
class World:
    dist: DistributionRegistry
    tok: AuthRegistry
    proxy: LiveRegistry
    images: dict[str, Image]
    layout: Path
    base: Path


def _push(tools: ContainersTools, layout: Path, ref: str, dest: str, creds: str) -> None:
    tools("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds,
          f"oci:{layout}:{ref}", f"docker://{dest}")  # fmt: skip


def _big_image() -> Image:
    rng = random.Random("proxy-big")
    layers = [layer_tar({f"data{i}.bin": rng.randbytes(6 << 20)}, busybox=False) for i in range(3)]
    return build_image([busybox_layer(), *layers])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tools: ContainersTools) -> Iterator[World]:
    base = tmp_path_factory.mktemp("proxy")
    htpasswd = base / "dist-htpasswd"
    subprocess.run(
        ["htpasswd", "-cbB", str(htpasswd), DIST_USER, DIST_PASSWORD], check=True, capture_output=True
    )
    dist = DistributionRegistry(base / "dist")
    dist.config["auth"] = {"htpasswd": {"realm": "dist", "path": str(htpasswd)}}
    dist.config["log"]["accesslog"] = {"disabled": False}
    dist.ready_statuses = (200, 401)
    tok = auth_registry(base / "tok", "token")
    secret = base / "tok-secret"
    secret.write_text(USERS["alice"] + "\n")
    upstreams = [
        {"prefix": "docker.io", "remoteurl": dist.url, "dockerhub": True, "revalidate": "1h",
         "credentials": {"username": DIST_USER, "passwordenv": "DIST_MIRROR_PASSWORD"}},
        {"prefix": "ghcr.io", "remoteurl": tok.url, "revalidate": 0, "timeout": "10s",
         "credentials": {"username": "alice", "passwordfile": str(secret)}},
    ]  # fmt: skip
    proxy = LiveRegistry(
        base / "proxy",
        config={"proxy": {"upstreams": upstreams}},
        env={"DIST_MIRROR_PASSWORD": DIST_PASSWORD},
    )
    images = {
        "busybox": make_image("proxy busybox 1"),
        "busybox-moved": make_image("proxy busybox moved"),
        "tool": make_image("proxy ghcr tool"),
        "tool-moved": make_image("proxy ghcr tool moved"),
        "big": _big_image(),
        "mine": make_image("proxy hosted"),
    }
    layout = write_oci_layout(base / "layout", images)
    started: list[DistributionRegistry | LiveRegistry] = []
    try:
        for server in (dist, tok, proxy):
            server.start()
            started.append(server)
        dist_creds, tok_creds = f"{DIST_USER}:{DIST_PASSWORD}", f"alice:{USERS['alice']}"
        _push(tools, layout, "busybox", f"{dist.host}/library/busybox:1", dist_creds)
        _push(tools, layout, "tool", f"{tok.host}/org/tool:1", tok_creds)
        _push(tools, layout, "big", f"{tok.host}/org/big:1", tok_creds)
        yield World(dist, tok, proxy, images, layout, base)
    finally:
        for server in started:
            server.stop()
    log = proxy.log()
    assert "Traceback" not in log, log[-5000:]


def _pulled_digest(out: Path, ref: str) -> str:
    refs, _ = read_oci_layout(out)
    return refs[ref]


def _copy_out(
    tools: ContainersTools, src: str, out: Path, ref: str = "x", check: bool = True
) -> subprocess.CompletedProcess[str]:
    return tools("skopeo", "copy", NO_TLS_SRC, f"docker://{src}", f"oci:{out}:{ref}", check=check)


def test_skopeo_by_prefixed_name_from_both_upstreams(
    world: World, tools: ContainersTools, tmp_path: Path
) -> None:
    host = world.proxy.host
    _copy_out(tools, f"{host}/docker.io/library/busybox:1", tmp_path / "a")
    assert _pulled_digest(tmp_path / "a", "x") == world.images["busybox"].digest
    _copy_out(tools, f"{host}/ghcr.io/org/tool:1", tmp_path / "b")
    assert _pulled_digest(tmp_path / "b", "x") == world.images["tool"].digest
    _, blobs = read_oci_layout(tmp_path / "b")
    for blob in world.images["tool"].blobs():
        assert blobs[blob.digest] == blob.data


def test_pushes_to_a_prefix_are_denied_and_hosted_repositories_work(
    world: World, tools: ContainersTools, tmp_path: Path
) -> None:
    host = world.proxy.host
    refused = tools("skopeo", "copy", "--dest-tls-verify=false", f"oci:{world.layout}:mine",
                    f"docker://{host}/docker.io/library/mine:1", check=False)  # fmt: skip
    assert refused.returncode != 0 and "denied" in refused.stderr.lower(), refused.stderr
    tools("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{world.layout}:mine",
          f"docker://{host}/team/app:1")  # fmt: skip
    _copy_out(tools, f"{host}/team/app:1", tmp_path / "m")
    assert _pulled_digest(tmp_path / "m", "x") == world.images["mine"].digest


def test_podman_registries_conf_mirror_with_prefix(
    world: World, tools: ContainersTools, tmp_path: Path
) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text(
        'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
        '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
        f'[[registry.mirror]]\nlocation = "{world.proxy.host}/docker.io"\ninsecure = true\n'
    )
    env = {**tools.env, "CONTAINERS_REGISTRIES_CONF": str(conf)}
    run(["podman", "pull", "docker.io/library/busybox:1"], env=env)
    out = run(
        ["podman", "image", "inspect", "--format", "{{.Digest}}", "docker.io/library/busybox:1"], env=env
    )
    assert out.stdout.strip() == world.images["busybox"].digest


@pytest.fixture(scope="module")
def mirrored_docker(tmp_path_factory: pytest.TempPathFactory, world: World) -> Iterator[Docker]:
    """A private dockerd whose ``registry-mirrors`` is the proxy."""
    root = tmp_path_factory.mktemp("dockerd-mirror")
    (root / "cli").mkdir()
    (root / "daemon.json").write_text(json.dumps({"registry-mirrors": [world.proxy.url]}))
    env = {**os.environ, "DOCKER_HOST": f"unix://{root}/docker.sock", "DOCKER_CONFIG": str(root / "cli")}
    argv = [
        "dockerd", "--config-file", root / "daemon.json",
        "--data-root", root / "root", "--exec-root", root / "exec", "--pidfile", root / "dockerd.pid",
        "-H", f"unix://{root}/docker.sock", "--storage-driver=overlay2",
        "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
    ]  # fmt: skip
    with open(root / "dockerd.log", "ab") as log:
        proc = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
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
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # dockerd stops its own containerd
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if containerd_pid is not None and not _wait_gone(containerd_pid, 20):
            with contextlib.suppress(ProcessLookupError):
                os.kill(containerd_pid, signal.SIGKILL)


def test_docker_registry_mirrors_library_and_prefixed_names(world: World, mirrored_docker: Docker) -> None:
    docker = mirrored_docker
    docker("pull", "busybox:1")  # docker.io/library/busybox: dockerd asks the mirror for library/busybox
    out = docker("image", "inspect", "--format", "{{json .RepoDigests}}", "busybox:1")
    assert world.images["busybox"].digest in out.stdout
    docker("pull", f"{world.proxy.host}/docker.io/library/busybox:1")
    docker("pull", f"{world.proxy.host}/ghcr.io/org/tool:1")
    ran = docker(
        "run",
        "--rm",
        "--network",
        "none",
        f"{world.proxy.host}/ghcr.io/org/tool:1",
        "busybox",
        "cat",
        "/hello.txt",
    )
    assert ran.stdout == "proxy ghcr tool"


def test_ctr_hosts_dir_mirror_with_ns(world: World, mirrored_docker: Docker, tmp_path: Path) -> None:
    """containerd asks the mirror for ``org/tool`` with ``?ns=ghcr.io``: only the ns parameter can
    send it to the ghcr.io upstream (unprefixed, it would go to docker.io's and not be found)."""
    for registry in ("ghcr.io", "docker.io"):
        (tmp_path / registry).mkdir()
        (tmp_path / registry / "hosts.toml").write_text(
            f'server = "https://{registry}"\n'
            f'[host."http://{world.proxy.host}"]\n  capabilities = ["pull", "resolve"]\n'
        )
    mirrored_docker.ctr("images", "pull", "--hosts-dir", tmp_path, "ghcr.io/org/tool:1")
    mirrored_docker.ctr("images", "pull", "--hosts-dir", tmp_path, "docker.io/library/busybox:1")
    listed = mirrored_docker.ctr("images", "ls").stdout
    assert world.images["tool"].digest in listed and world.images["busybox"].digest in listed


def test_sixteen_concurrent_cold_pulls_fetch_each_blob_once(
    world: World, tools: ContainersTools, tmp_path: Path
) -> None:
    image = world.images["big"]
    src = f"{world.proxy.host}/ghcr.io/org/big:1"

    def pull(i: int) -> subprocess.CompletedProcess[str]:
        env = {**tools.env, "TMPDIR": str(tmp_path)}
        argv = ["skopeo", "copy", NO_TLS_SRC, f"docker://{src}", f"oci:{tmp_path}/out{i}:x"]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)

    # A blob cached for another repository already (the busybox layer, when an earlier test pulled
    # it) is linked after a HEAD, not fetched: known before the pulls, so the test runs alone too.
    blobs_dir = world.proxy.root / "docker/registry/v2/blobs/sha256"
    seen_before = {
        b.digest for b in image.blobs() if (blobs_dir / b.digest[7:9] / b.digest[7:] / "data").exists()
    }
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(pull, range(16)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    for i in range(16):
        _, blobs = read_oci_layout(tmp_path / f"out{i}")
        for blob in image.blobs():
            assert blobs[blob.digest] == blob.data
    fetched: dict[str, int] = {}
    for line in world.tok.log().splitlines():
        if '"path"' not in line:
            continue
        entry = json.loads(line)
        if (
            entry.get("method") == "GET"
            and "/v2/org/big/blobs/" in entry.get("path", "")
            and entry.get("status") == 200
        ):
            digest = entry["path"].rsplit("/", 1)[1]
            fetched[digest] = fetched.get(digest, 0) + 1
    assert fetched == {b.digest: 1 for b in image.blobs() if b.digest not in seen_before}, fetched


LARGE_LAYERS = 4
LARGE_LAYER = 50 << 20  # 4 x 50 MiB: the 200 MiB image


def _push_large(dist: DistributionRegistry) -> dict[str, int]:
    """A 200 MiB OCI image pushed to distribution by HTTP (random layers, made in a second)."""
    rng = random.Random("proxy-200mib")
    auth = (DIST_USER, DIST_PASSWORD)
    sizes: dict[str, int] = {}
    descriptors = []
    with httpx.Client(base_url=dist.url, auth=auth, timeout=120) as c:
        blobs = [json.dumps({"architecture": "amd64", "os": "linux"}).encode()]
        blobs += [rng.randbytes(LARGE_LAYER) for _ in range(LARGE_LAYERS)]
        for data in blobs:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            start = c.post("/v2/library/large/blobs/uploads/")
            assert start.status_code == 202, start.text
            location = start.headers["location"]  # keeps distribution's _state query
            sep = "&" if "?" in location else "?"
            done = c.put(f"{location}{sep}digest={digest}", content=data)
            assert done.status_code == 201, done.text
            sizes[digest] = len(data)
            descriptors.append({"digest": digest, "size": len(data)})
        config, *layers = descriptors
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **d} for d in layers],
        }
        put = c.put(
            "/v2/library/large/manifests/1",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert put.status_code == 201, put.text
    return sizes


def test_sixteen_clients_pull_a_200_mib_image_and_each_blob_is_fetched_once(world: World) -> None:
    """16 independent clients at once (not one dockerd, which coalesces its own pulls), each
    checking every blob's digest; distribution's access log shows each blob fetched once."""
    sizes = _push_large(world.dist)
    url = f"{world.proxy.url}/v2/docker.io/library/large"

    target = urllib.parse.urlsplit(url)

    def client(_: int) -> dict[str, str]:
        # http.client, not httpx: 16 x 200 MiB through httpx's stream cost the test more CPU than
        # the registry under test; each client still has its own connection and checks digests.
        got = {}
        conn = http.client.HTTPConnection(target.netloc, timeout=300)
        try:
            accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
            conn.request("GET", f"{target.path}/manifests/1", headers=accept)
            r = conn.getresponse()
            assert r.status == 200, r.read()
            r.read()
            buffer = memoryview(bytearray(1 << 20))
            for digest in sizes:
                h = hashlib.sha256()
                conn.request("GET", f"{target.path}/blobs/{digest}")
                blob = conn.getresponse()
                assert blob.status == 200
                while n := blob.readinto(buffer):
                    h.update(buffer[:n])
                got[digest] = "sha256:" + h.hexdigest()
        finally:
            conn.close()
        return got

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(client, range(16)))
    assert all(r == {d: d for d in sizes} for r in results)
    fetched: dict[str, int] = {}
    for method, path, status in re.findall(r'"(GET|HEAD) (\S+) HTTP/[\d.]+" (\d{3})', world.dist.log()):
        if method == "GET" and status == "200" and path.startswith("/v2/library/large/blobs/"):
            digest = path.rsplit("/", 1)[1]
            fetched[digest] = fetched.get(digest, 0) + 1
    lines = [line for line in world.dist.log().splitlines() if "/library/large/" in line]
    assert fetched == {d: 1 for d in sizes}, (sorted(sizes), lines)


def test_tag_moved_upstream_seen_per_revalidate(world: World, tools: ContainersTools, tmp_path: Path) -> None:
    host = world.proxy.host
    _push(tools, world.layout, "tool-moved", f"{world.tok.host}/org/tool:1", f"alice:{USERS['alice']}")
    _push(
        tools,
        world.layout,
        "busybox-moved",
        f"{world.dist.host}/library/busybox:1",
        f"{DIST_USER}:{DIST_PASSWORD}",
    )
    # ghcr.io revalidates on every pull (revalidate: 0): the moved tag is served at once.
    _copy_out(tools, f"{host}/ghcr.io/org/tool:1", tmp_path / "t")
    assert _pulled_digest(tmp_path / "t", "x") == world.images["tool-moved"].digest
    # docker.io revalidates hourly: the cached tag is served until then.
    _copy_out(tools, f"{host}/docker.io/library/busybox:1", tmp_path / "b")
    assert _pulled_digest(tmp_path / "b", "x") == world.images["busybox"].digest


def test_upstreams_stopped_cached_still_pulls_uncached_fails_clearly(
    world: World, tools: ContainersTools, tmp_path: Path
) -> None:
    world.dist.stop()
    world.tok.stop()
    host = world.proxy.host
    tool = world.images["tool-moved"]
    # By tag (ghcr.io revalidates every pull: its HEAD fails, the cached tag is served) and digest.
    _copy_out(tools, f"{host}/ghcr.io/org/tool:1", tmp_path / "t")
    assert _pulled_digest(tmp_path / "t", "x") == tool.digest
    _copy_out(tools, f"{host}/ghcr.io/org/tool@{tool.digest}", tmp_path / "d")
    _copy_out(tools, f"{host}/docker.io/library/busybox:1", tmp_path / "b")
    assert "serving the cached ghcr.io/org/tool:1" in world.proxy.log()
    # Not cached: an error naming the upstream, at once (connection refused), not a hang.
    failed = tools("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/ghcr.io/org/other:1",
                   check=False)  # fmt: skip
    assert failed.returncode != 0
    assert "502" in failed.stderr, failed.stderr  # skopeo shows the status, not the body
    answer = httpx.get(f"{world.proxy.url}/v2/ghcr.io/org/other/manifests/1", timeout=30)
    assert answer.status_code == 502
    message = answer.json()["errors"][0]["message"]
    assert world.tok.url in message and "ConnectError" in message, message
