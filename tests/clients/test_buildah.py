"""buildah: ``from scratch`` + copy + commit + push, and push of an image pulled from an OCI archive."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clients.conftest import ContainersTools, make_image
from tests.clients.images import (
    BUSYBOX,
    OCI_CONFIG,
    OCI_MANIFEST,
    diff_id,
    fetch_blob,
    fetch_manifest,
    tar_members,
    write_oci_archive,
    write_oci_layout,
)
from tests.servers.dockyard import LiveRegistry

TLS = "--tls-verify=false"


def test_from_scratch_commit_push(tools: ContainersTools, registry: LiveRegistry, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("built by buildah\n")
    container = tools("buildah", "from", "scratch").stdout.strip()
    tools("buildah", "copy", "--chmod", "0755", container, BUSYBOX, "/bin/busybox")
    tools("buildah", "copy", container, tmp_path / "hello.txt", "/hello.txt")
    tools(
        "buildah",
        "config",
        "--cmd",
        "/bin/busybox cat /hello.txt",
        "--label",
        "org.dockyard.test=buildah",
        container,
    )
    image_id = tools(
        "buildah", "commit", "--rm", "--format", "oci", container, "dockyard-buildah:v1"
    ).stdout.strip()
    image_id = image_id.splitlines()[-1]

    digestfile = tmp_path / "digest"
    dest = f"docker://{registry.host}/buildah/scratch:v1"
    tools("buildah", "push", TLS, "--digestfile", digestfile, "dockyard-buildah:v1", dest)

    pushed = fetch_manifest(registry.url, "buildah/scratch", "v1")
    assert pushed.digest == digestfile.read_text().strip()
    assert pushed.media_type == OCI_MANIFEST
    doc = pushed.json()
    assert doc["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": f"sha256:{image_id}",
        "size": doc["config"]["size"],
    }
    config = json.loads(fetch_blob(registry.url, "buildah/scratch", doc["config"]["digest"]))
    assert config["config"]["Labels"]["org.dockyard.test"] == "buildah"
    layers = [fetch_blob(registry.url, "buildah/scratch", la["digest"]) for la in doc["layers"]]
    assert [diff_id(la) for la in layers] == config["rootfs"]["diff_ids"]
    files: dict[str, bytes] = {}
    for layer in layers:
        files |= tar_members(layer)
    assert files == {"bin/busybox": BUSYBOX.read_bytes(), "hello.txt": b"built by buildah\n"}

    # And back: buildah pulls what it pushed to the same image id.
    tools("buildah", "rmi", "dockyard-buildah:v1")
    pulled = tools("buildah", "pull", TLS, f"{registry.host}/buildah/scratch@{pushed.digest}").stdout
    assert pulled.strip().splitlines()[-1] == image_id


def test_push_from_oci_archive(tools: ContainersTools, registry: LiveRegistry, tmp_path: Path) -> None:
    image = make_image("buildah archive")
    archive = write_oci_archive(tmp_path / "image.tar", write_oci_layout(tmp_path / "layout", {"v1": image}))
    image_id = tools("buildah", "pull", f"oci-archive:{archive}:v1").stdout.strip().splitlines()[-1]
    assert image_id == image.config.hex

    tools("buildah", "push", TLS, image_id, f"docker://{registry.host}/buildah/archive:v1")
    doc = fetch_manifest(registry.url, "buildah/archive", "v1").json()
    assert doc["config"]["digest"] == image.config.digest
    assert fetch_blob(registry.url, "buildah/archive", image.config.digest) == image.config.data
    layers = [fetch_blob(registry.url, "buildah/archive", la["digest"]) for la in doc["layers"]]
    assert [diff_id(la) for la in layers] == list(image.diff_ids)
    assert tar_members(layers[1]) == {"hello.txt": b"buildah archive"}
    tools("buildah", "rmi", image_id)
