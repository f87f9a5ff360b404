"""Docker engine (Debian docker.io, private dockerd): push, pull by tag/digest, --platform, build + push."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients.conftest import Docker, make_image
from tests.clients.images import (
    DOCKER_MANIFEST,
    build_index,
    diff_id,
    fetch_blob,
    fetch_manifest,
    push_to_registry,
    tar_members,
    write_docker_archive,
)
from tests.servers.dockyard import LiveRegistry


def _inspect(docker: Docker, ref: str) -> dict[str, object]:
    return dict(json.loads(docker("image", "inspect", ref).stdout)[0])


def test_push(docker: Docker, registry: LiveRegistry, tmp_path: Path) -> None:
    image = make_image("docker push")
    docker("load", "-i", write_docker_archive(tmp_path / "image.tar", image, "dockyard-tests/push:v1"))
    ref = f"{registry.host}/docker/push:v1"
    docker("tag", "dockyard-tests/push:v1", ref)
    out = docker("push", ref).stdout

    pushed = fetch_manifest(registry.url, "docker/push", "v1")
    assert f"v1: digest: {pushed.digest} size: {len(pushed.data)}" in out
    assert pushed.media_type == DOCKER_MANIFEST  # docker always writes schema2
    doc = pushed.json()
    # The image config travels byte for byte; layers are recompressed but hold the same tars.
    assert doc["config"]["digest"] == image.config.digest
    assert fetch_blob(registry.url, "docker/push", image.config.digest) == image.config.data
    assert [diff_id(fetch_blob(registry.url, "docker/push", la["digest"])) for la in doc["layers"]] == list(
        image.diff_ids
    )
    assert _inspect(docker, ref)["RepoDigests"] == [f"{registry.host}/docker/push@{pushed.digest}"]


def test_pull_by_tag_and_digest(docker: Docker, registry: LiveRegistry) -> None:
    image = make_image("docker pull")
    push_to_registry(registry.url, "docker/pull", image, "v1")
    by_tag = f"{registry.host}/docker/pull:v1"
    by_digest = f"{registry.host}/docker/pull@{image.digest}"

    out = docker("pull", by_tag).stdout
    assert f"Digest: {image.digest}" in out
    info = _inspect(docker, by_tag)
    assert info["Id"] == image.config.digest
    assert info["RepoDigests"] == [by_digest]
    assert (
        docker("run", "--rm", "--network", "none", by_tag, "busybox", "cat", "/hello.txt").stdout
        == "docker pull"
    )

    docker("rmi", by_tag)
    assert docker("image", "inspect", image.config.digest, check=False).returncode != 0
    docker("pull", by_digest)
    assert _inspect(docker, by_digest)["Id"] == image.config.digest
    assert (
        docker("run", "--rm", "--network", "none", by_digest, "busybox", "cat", "/hello.txt").stdout
        == "docker pull"
    )

    missing = docker("pull", f"{registry.host}/docker/pull@sha256:{'0' * 64}", check=False)
    assert missing.returncode != 0


@pytest.mark.parametrize("docker_types", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_pull_platform_from_index(docker: Docker, registry: LiveRegistry, docker_types: bool) -> None:
    kind = "list" if docker_types else "index"
    amd64 = make_image(f"docker {kind} amd64", docker=docker_types)
    arm64 = make_image(f"docker {kind} arm64", arch="arm64", docker=docker_types)
    index = build_index([amd64, arm64], docker=docker_types)
    push_to_registry(registry.url, f"docker/{kind}", index, "v1")
    ref = f"{registry.host}/docker/{kind}:v1"

    docker("pull", "--platform", "linux/arm64", ref)
    info = _inspect(docker, ref)
    assert info["Id"] == arm64.config.digest
    assert info["Architecture"] == "arm64"
    assert info["RepoDigests"] == [f"{registry.host}/docker/{kind}@{index.digest}"]

    docker("pull", "--platform", "linux/amd64", ref)
    info = _inspect(docker, ref)
    assert (info["Id"], info["Architecture"]) == (amd64.config.digest, "amd64")


def test_build_and_push(docker: Docker, registry: LiveRegistry, tmp_path: Path) -> None:
    base = make_image("docker base")
    push_to_registry(registry.url, "docker/base", base, "v1")
    context = tmp_path / "context"
    context.mkdir()
    (context / "built.txt").write_text("built by docker build\n")
    (context / "Dockerfile").write_text(
        f"FROM {registry.host}/docker/base:v1\nCOPY built.txt /built.txt\nLABEL org.dockyard.test=build\n"
    )
    ref = f"{registry.host}/docker/built:v1"
    docker("build", "--progress", "plain", "-t", ref, context, timeout=300)
    docker("push", ref)

    pushed = fetch_manifest(registry.url, "docker/built", "v1")
    doc = pushed.json()
    config = json.loads(fetch_blob(registry.url, "docker/built", doc["config"]["digest"]))
    assert doc["config"]["digest"] == _inspect(docker, ref)["Id"]
    assert config["config"]["Labels"] == {"org.dockyard.test": "build"}
    assert config["rootfs"]["diff_ids"][:2] == list(base.diff_ids)
    assert len(doc["layers"]) == 3
    top = fetch_blob(registry.url, "docker/built", doc["layers"][2]["digest"])
    assert diff_id(top) == config["rootfs"]["diff_ids"][2]
    assert tar_members(top) == {"built.txt": b"built by docker build\n"}
    assert docker(
        "run", "--rm", "--network", "none", ref, "busybox", "cat", "/built.txt", "/hello.txt"
    ).stdout == ("built by docker build\ndocker base")
