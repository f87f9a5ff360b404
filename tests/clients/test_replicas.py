"""docker, podman, skopeo and ctr push and pull through HAProxy in front of three replicas.

The replicas share one SeaweedFS bucket and one PostgreSQL (``tests/servers/cluster.py``), and the
load balancer sends each request to the next replica, so every push has its POST, PATCHes and PUT
spread over replicas that know of the upload only through the database and the bucket. Each test
checks what the client stored byte for byte, and that its requests reached more than one replica.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import DOCKER_CLI, ContainersTools, Docker, make_image
from tests.clients.images import (
    build_image,
    build_index,
    busybox_layer,
    diff_id,
    fetch_blob,
    fetch_manifest,
    layer_tar,
    push_to_registry,
    read_oci_layout,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)
from tests.deploy.conftest import self_signed
from tests.servers.cluster import Cluster, sha256
from tests.servers.nginx import NginxBalancer

_UPLOAD = re.compile(r'"method": "(PATCH|PUT)", "path": "/v2/([^"]+)/blobs/uploads/')


def _uploads_by_replica(cluster: Cluster, repo: str) -> list[int]:
    """How many upload PATCH/PUT requests for ``repo`` each replica answered (its access log)."""
    return [sum(1 for m in _UPLOAD.finditer(r.log()) if m.group(2) == repo) for r in cluster.replicas]


@pytest.fixture(autouse=True)
def spread(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test's uploads (its repositories start with the test's name) went to several replicas."""
    yield
    repo_prefix = request.node.name.removeprefix("test_")
    counts = [0] * len(cluster.replicas)
    for replica_counts in (_uploads_by_replica(cluster, repo) for repo in _repos(cluster, repo_prefix)):
        counts = [a + b for a, b in zip(counts, replica_counts, strict=True)]
    assert sum(1 for c in counts if c) >= 2, f"uploads per replica: {counts}"


def _repos(cluster: Cluster, prefix: str) -> set[str]:
    return {
        m.group(2)
        for r in cluster.replicas
        for m in _UPLOAD.finditer(r.log())
        if m.group(2).startswith(prefix)
    }


def test_docker(docker: Docker, cluster: Cluster, tmp_path: Path) -> None:
    image = make_image("docker through the load balancer")
    docker("load", "-i", write_docker_archive(tmp_path / "image.tar", image, "dockyard-tests/lb:v1"))
    ref = f"{cluster.host}/docker/lb:v1"
    docker("tag", "dockyard-tests/lb:v1", ref)
    out = docker("push", ref).stdout
    pushed = fetch_manifest(cluster.url, "docker/lb", "v1")
    assert f"v1: digest: {pushed.digest} size: {len(pushed.data)}" in out
    doc = pushed.json()
    assert doc["config"]["digest"] == image.config.digest
    layers = [fetch_blob(cluster.url, "docker/lb", layer["digest"]) for layer in doc["layers"]]
    assert [diff_id(layer) for layer in layers] == list(image.diff_ids)

    docker("rmi", ref, "dockyard-tests/lb:v1")
    by_digest = f"{cluster.host}/docker/lb@{pushed.digest}"
    docker("pull", by_digest)
    info = json.loads(docker("image", "inspect", by_digest).stdout)[0]
    assert info["Id"] == image.config.digest
    run = docker("run", "--rm", "--network", "none", by_digest, "busybox", "cat", "/hello.txt")
    assert run.stdout == "docker through the load balancer"
    docker("rmi", by_digest)


def test_podman(tools: ContainersTools, cluster: Cluster) -> None:
    image = make_image("podman through the load balancer")
    push_to_registry(cluster.url, "podman/src", image, "v1")
    tools("podman", "pull", "--tls-verify=false", f"{cluster.host}/podman/src:v1")
    dst = f"{cluster.host}/podman/dst:v1"
    tools("podman", "tag", f"{cluster.host}/podman/src:v1", dst)
    digestfile = tools.root / "replicas-push.digest"
    tools("podman", "push", "--tls-verify=false", "--digestfile", digestfile, dst)
    pushed = fetch_manifest(cluster.url, "podman/dst", "v1")
    assert digestfile.read_text().strip() == pushed.digest
    doc = pushed.json()
    assert fetch_blob(cluster.url, "podman/dst", image.config.digest) == image.config.data
    layers = [fetch_blob(cluster.url, "podman/dst", layer["digest"]) for layer in doc["layers"]]
    assert [diff_id(layer) for layer in layers] == list(image.diff_ids)

    tools("podman", "rmi", "--force", image.config.hex)
    by_digest = f"{cluster.host}/podman/dst@{pushed.digest}"
    tools("podman", "pull", "--tls-verify=false", by_digest)
    info = json.loads(tools("podman", "image", "inspect", by_digest).stdout)[0]
    assert (info["Id"], info["Digest"]) == (image.config.hex, pushed.digest)
    tools("podman", "rmi", "--force", image.config.hex)


def test_skopeo(tools: ContainersTools, cluster: Cluster, tmp_path: Path) -> None:
    index = build_index([make_image("skopeo lb amd64"), make_image("skopeo lb arm64", arch="arm64")])
    layout = write_oci_layout(tmp_path / "src", {"multi": index})
    dest = f"docker://{cluster.host}/skopeo/lb:v1"
    tools(
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{layout}:multi",
        dest,
    )
    fetched = fetch_manifest(cluster.url, "skopeo/lb", "v1")
    assert (fetched.digest, fetched.data) == (index.digest, index.manifest.data)
    for blob in index.blobs():
        assert fetch_blob(cluster.url, "skopeo/lb", blob.digest) == blob.data

    out = tmp_path / "out"
    tools("skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", dest, f"oci:{out}:multi")
    tags, blobs = read_oci_layout(out)
    assert tags == {"multi": index.digest}
    expected = {b.digest: b.data for b in index.blobs()} | {index.digest: index.manifest.data}
    assert blobs == expected | {c.digest: c.manifest.data for c in index.images}


def test_skopeo_through_nginx(tools: ContainersTools, cluster: Cluster, tmp_path: Path) -> None:
    """nginx (Debian) as the load balancer instead of HAProxy, with the compose deployment's
    ``ha.conf`` (TLS, no request buffering, no body limit, long timeouts): skopeo pushes an index
    of two images through it and pulls it back, its requests spread over the replicas."""
    assert cluster.store is not None
    cert, key = self_signed(tmp_path / "certs", "127.0.0.1")
    replicas = [r.host for r in cluster.replicas]
    store = cluster.store.url.split("://", 1)[1]
    lb = NginxBalancer(tmp_path / "nginx", replicas, store, cert, key).start()
    try:
        index = build_index([make_image("nginx lb amd64"), make_image("nginx lb arm64", arch="arm64")])
        layout = write_oci_layout(tmp_path / "src", {"multi": index})
        ref = f"docker://{lb.host}/skopeo_through_nginx/app:v1"
        copy = ("skopeo", "copy", "--all", "--preserve-digests")
        tools(*copy, "--dest-tls-verify=false", f"oci:{layout}:multi", ref)
        fetched = fetch_manifest(cluster.url, "skopeo_through_nginx/app", "v1")
        assert (fetched.digest, fetched.data) == (index.digest, index.manifest.data)
        out = tmp_path / "out"
        tools(*copy, "--src-tls-verify=false", ref, f"oci:{out}:multi")
        tags, blobs = read_oci_layout(out)
        assert tags == {"multi": index.digest}
        expected = {b.digest: b.data for b in index.blobs()} | {index.digest: index.manifest.data}
        assert blobs == expected | {c.digest: c.manifest.data for c in index.images}
        answered = {upstream for upstream in lb.upstreams() if upstream in replicas}
        assert len(answered) >= 2, lb.upstreams()
    finally:
        lb.stop()


def test_ctr(docker: Docker, cluster: Cluster, tmp_path: Path) -> None:
    index = build_index([make_image("ctr lb amd64"), make_image("ctr lb arm64", arch="arm64")])
    ref = f"{cluster.host}/ctr/lb:v1"
    archive = write_oci_archive(tmp_path / "index.tar", write_oci_layout(tmp_path / "layout", {ref: index}))
    docker.ctr("images", "import", "--all-platforms", "--no-unpack", archive)
    docker.ctr("images", "push", "--plain-http", ref)
    fetched = fetch_manifest(cluster.url, "ctr/lb", "v1")
    assert (fetched.digest, fetched.data) == (index.digest, index.manifest.data)
    docker.ctr("images", "rm", ref)
    for blob in [index.manifest, *(i.manifest for i in index.images), *index.blobs()]:
        docker.ctr("content", "rm", blob.digest, check=False)

    docker.ctr("images", "pull", "--plain-http", "--all-platforms", ref)
    for blob in [index.manifest, *(i.manifest for i in index.images), *index.blobs()]:
        assert docker.content(blob.digest) == blob.data
    docker.ctr("images", "rm", ref)


def _receiving(port: int) -> int:
    """The most bytes one connection to ``port`` has received (``ss``): the replica whose
    connection from the load balancer passes the layer's size is the one receiving it."""
    out = subprocess.run(
        ["ss", "-Htin", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    return max((int(n) for n in re.findall(r"bytes_received:(\d+)", out)), default=0)


def test_kill(docker: Docker, cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL the replica receiving a layer in the middle of ``docker push``: docker's own retry
    finishes the push through the other replicas, and no stored blob is ever partial."""
    big = random.Random("kill").randbytes(24 << 20)  # incompressible: 24 MiB on the wire
    image = build_image([busybox_layer(), layer_tar({"big.bin": big}, busybox=False)])
    docker("load", "-i", write_docker_archive(tmp_path / "image.tar", image, "dockyard-tests/kill:v1"))
    ref = f"{cluster.host}/kill/app:v1"
    docker("tag", "dockyard-tests/kill:v1", ref)
    push = subprocess.Popen(
        [DOCKER_CLI, "push", ref], env=docker.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and push.poll() is None and time.monotonic() < deadline:
            received = [_receiving(r.port) for r in cluster.replicas]
            victim = next((i for i, n in enumerate(received) if n > 8 << 20), None)
            time.sleep(0.02)
        assert victim is not None and push.poll() is None, "no replica was seen receiving the layer"
        cluster.replicas[victim].stop(signal.SIGKILL)
        out, _ = push.communicate(timeout=300)
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    assert push.returncode == 0, out
    assert "Retrying in" in out, out  # docker saw the cut and retried the layer
    pushed = fetch_manifest(cluster.url, "kill/app", "v1")
    assert f"v1: digest: {pushed.digest}" in out
    layers = [fetch_blob(cluster.url, "kill/app", layer["digest"]) for layer in pushed.json()["layers"]]
    assert [diff_id(layer) for layer in layers] == list(image.diff_ids)
    # Nothing partial: every blob in the store holds exactly the bytes of its digest.
    stored = cluster.stored_blobs()
    assert stored and all(sha256(data) == digest for digest, data in stored.items())
    docker("rmi", ref, "dockyard-tests/kill:v1")  # (the killed replica stays down: the module ends)
