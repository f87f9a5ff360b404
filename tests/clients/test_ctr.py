"""containerd ``ctr`` (the containerd of the private dockerd): push and pull of an OCI index, digests kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.conftest import Docker, make_image
from tests.clients.images import (
    Index,
    build_index,
    fetch_blob,
    fetch_manifest,
    push_to_registry,
    write_oci_archive,
    write_oci_layout,
)
from tests.servers.dockyard import LiveRegistry


@pytest.fixture
def index(request: pytest.FixtureRequest) -> Index:
    name = request.node.name
    return build_index([make_image(f"ctr {name} amd64"), make_image(f"ctr {name} arm64", arch="arm64")])


def _assert_registry_holds(registry: LiveRegistry, repo: str, tag: str, index: Index) -> None:
    fetched = fetch_manifest(registry.url, repo, tag)
    assert (fetched.digest, fetched.data) == (index.digest, index.manifest.data)
    for child in index.images:
        assert fetch_manifest(registry.url, repo, child.digest).data == child.manifest.data
    for blob in index.blobs():
        assert fetch_blob(registry.url, repo, blob.digest) == blob.data


def _image_target(docker: Docker, ref: str) -> str:
    """The digest ``ctr images ls`` shows for ``ref``."""
    for line in docker.ctr("images", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == ref:
            return next(f for f in fields if f.startswith("sha256:"))
    raise AssertionError(f"{ref} not in ctr images ls")


def _assert_content_store_holds(docker: Docker, index: Index) -> None:
    for blob in [index.manifest, *(i.manifest for i in index.images), *index.blobs()]:
        assert docker.content(blob.digest) == blob.data


def test_push_index(docker: Docker, registry: LiveRegistry, index: Index, tmp_path: Path) -> None:
    ref = f"{registry.host}/ctr/pushed:v1"
    archive = write_oci_archive(tmp_path / "index.tar", write_oci_layout(tmp_path / "layout", {ref: index}))
    docker.ctr("images", "import", "--all-platforms", "--no-unpack", archive)
    assert _image_target(docker, ref) == index.digest

    docker.ctr("images", "push", "--plain-http", ref)
    _assert_registry_holds(registry, "ctr/pushed", "v1", index)
    docker.ctr("images", "rm", ref)


def test_pull_index_all_platforms(docker: Docker, registry: LiveRegistry, index: Index) -> None:
    push_to_registry(registry.url, "ctr/source", index, "v1")
    ref = f"{registry.host}/ctr/source:v1"
    docker.ctr("images", "pull", "--plain-http", "--all-platforms", ref)
    assert _image_target(docker, ref) == index.digest
    _assert_content_store_holds(docker, index)

    # What ctr pulled, it pushes back unchanged under another name.
    copy = f"{registry.host}/ctr/copy:v2"
    docker.ctr("images", "tag", ref, copy)
    docker.ctr("images", "push", "--plain-http", copy)
    _assert_registry_holds(registry, "ctr/copy", "v2", index)
    docker.ctr("images", "rm", ref, copy)
