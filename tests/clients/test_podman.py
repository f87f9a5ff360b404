"""podman: pull, run, push, pull by digest; ``manifest create/add/push --all``."""

from __future__ import annotations

import json

from tests.clients.conftest import ContainersTools, make_image
from tests.clients.images import (
    DOCKER_LIST,
    OCI_INDEX,
    diff_id,
    fetch_blob,
    fetch_manifest,
    push_to_registry,
)
from tests.servers.dockyard import LiveRegistry

TLS = "--tls-verify=false"


def _inspect(tools: ContainersTools, ref: str) -> dict[str, object]:
    return dict(json.loads(tools("podman", "image", "inspect", ref).stdout)[0])


def test_pull_push_pull(tools: ContainersTools, registry: LiveRegistry) -> None:
    image = make_image("podman pull")
    push_to_registry(registry.url, "podman/src", image, "v1")
    src = f"{registry.host}/podman/src:v1"

    tools("podman", "pull", TLS, src)
    info = _inspect(tools, src)
    assert info["Id"] == image.config.hex
    assert info["Digest"] == image.digest
    assert tools(
        "podman", "run", "--rm", "--network", "none", src, "busybox", "cat", "/hello.txt"
    ).stdout == ("podman pull")

    dst = f"{registry.host}/podman/dst:v1"
    tools("podman", "tag", src, dst)
    digestfile = tools.root / "push.digest"
    tools("podman", "push", TLS, "--digestfile", digestfile, dst)
    pushed = fetch_manifest(registry.url, "podman/dst", "v1")
    assert digestfile.read_text().strip() == pushed.digest
    doc = pushed.json()
    assert doc["config"]["digest"] == image.config.digest
    assert fetch_blob(registry.url, "podman/dst", image.config.digest) == image.config.data
    assert [diff_id(fetch_blob(registry.url, "podman/dst", la["digest"])) for la in doc["layers"]] == list(
        image.diff_ids
    )

    tools("podman", "rmi", "--force", image.config.hex)
    assert tools("podman", "image", "exists", image.config.hex, check=False).returncode == 1
    by_digest = f"{registry.host}/podman/dst@{pushed.digest}"
    tools("podman", "pull", TLS, by_digest)
    info = _inspect(tools, by_digest)
    assert (info["Id"], info["Digest"]) == (image.config.hex, pushed.digest)
    tools("podman", "rmi", "--force", image.config.hex)


def test_manifest_create_add_push_all(tools: ContainersTools, registry: LiveRegistry) -> None:
    images = {"amd64": make_image("podman amd64"), "arm64": make_image("podman arm64", arch="arm64")}
    for arch, image in images.items():
        push_to_registry(registry.url, f"podman/{arch}", image, "v1")

    tools("podman", "manifest", "create", "localhost/dockyard-list")
    for arch in images:
        tools(
            "podman",
            "manifest",
            "add",
            TLS,
            "localhost/dockyard-list",
            f"docker://{registry.host}/podman/{arch}:v1",
        )
    local = json.loads(tools("podman", "manifest", "inspect", "localhost/dockyard-list").stdout)
    assert {m["platform"]["architecture"]: m["digest"] for m in local["manifests"]} == {
        arch: image.digest for arch, image in images.items()
    }

    dest = f"docker://{registry.host}/podman/list:v1"
    tools("podman", "manifest", "push", "--all", TLS, "localhost/dockyard-list", dest)
    pushed = fetch_manifest(registry.url, "podman/list", "v1")
    assert pushed.media_type in (OCI_INDEX, DOCKER_LIST)
    children = {m["platform"]["architecture"]: m for m in pushed.json()["manifests"]}
    assert sorted(children) == ["amd64", "arm64"]
    for arch, image in images.items():
        child = fetch_manifest(registry.url, "podman/list", children[arch]["digest"])
        assert child.media_type == children[arch]["mediaType"]
        doc = child.json()
        assert doc["config"]["digest"] == image.config.digest
        config = json.loads(fetch_blob(registry.url, "podman/list", image.config.digest))
        assert (config["architecture"], config["os"]) == (arch, "linux")
        layers = [fetch_blob(registry.url, "podman/list", la["digest"]) for la in doc["layers"]]
        assert [diff_id(la) for la in layers] == list(image.diff_ids)

    tools("podman", "manifest", "rm", "localhost/dockyard-list")
