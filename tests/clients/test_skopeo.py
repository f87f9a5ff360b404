"""skopeo: copy in and out with --preserve-digests (image, index, artifact with subject), delete, list-tags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ContainersTools, make_image
from tests.clients.images import (
    OCI_MANIFEST,
    Image,
    Index,
    build_artifact,
    build_index,
    fetch_blob,
    fetch_manifest,
    fetch_tags,
    manifest_status,
    push_to_registry,
    read_oci_layout,
    referrers,
    write_oci_layout,
)
from tests.servers.dockyard import LiveRegistry

NO_TLS = "--dest-tls-verify=false"
SIGNATURE_TYPE = "application/vnd.dockyard.test.signature.v1"


@pytest.fixture(scope="module")
def single() -> Image:
    return make_image("skopeo single")


@pytest.fixture(scope="module")
def index() -> Index:
    return build_index([make_image("skopeo amd64"), make_image("skopeo arm64", arch="arm64")])


@pytest.fixture(scope="module")
def artifact(single: Image) -> Image:
    return build_artifact(
        single.manifest, SIGNATURE_TYPE, b"signed by the tests\n", "application/vnd.dockyard.sig"
    )


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, single: Image, index: Index, artifact: Image) -> Path:
    return write_oci_layout(
        tmp_path_factory.mktemp("skopeo-src"), {"single": single, "multi": index, "artifact": artifact}
    )


def _assert_in_registry(registry: LiveRegistry, repo: str, tag: str, item: Image | Index) -> None:
    """The registry serves the exact manifest bytes under ``tag`` and every blob byte for byte."""
    fetched = fetch_manifest(registry.url, repo, tag)
    assert fetched.digest == item.digest
    assert fetched.data == item.manifest.data
    assert fetched.media_type == item.manifest.media_type
    children = item.images if isinstance(item, Index) else ()
    for child in children:
        assert fetch_manifest(registry.url, repo, child.digest).data == child.manifest.data
    for blob in item.blobs():
        assert fetch_blob(registry.url, repo, blob.digest) == blob.data


def _assert_layout_holds(directory: Path, tag: str, item: Image | Index) -> None:
    """A layout written by skopeo has ``tag`` → the original digest and exactly the original objects."""
    tags, blobs = read_oci_layout(directory)
    assert tags == {tag: item.digest}
    expected = {b.digest: b.data for b in item.blobs()} | {item.digest: item.manifest.data}
    if isinstance(item, Index):
        expected |= {c.digest: c.manifest.data for c in item.images}
    assert blobs == expected


def test_copy_single_image(
    tools: ContainersTools, registry: LiveRegistry, layout: Path, single: Image, tmp_path: Path
) -> None:
    dest = f"docker://{registry.host}/skopeo/single:v1"
    tools("skopeo", "copy", "--preserve-digests", NO_TLS, f"oci:{layout}:single", dest)
    _assert_in_registry(registry, "skopeo/single", "v1", single)

    tools(
        "skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", dest, f"oci:{tmp_path}/out:single"
    )
    _assert_layout_holds(tmp_path / "out", "single", single)


def test_copy_index_all(
    tools: ContainersTools, registry: LiveRegistry, layout: Path, index: Index, tmp_path: Path
) -> None:
    dest = f"docker://{registry.host}/skopeo/multi:v1"
    tools("skopeo", "copy", "--all", "--preserve-digests", NO_TLS, f"oci:{layout}:multi", dest)
    _assert_in_registry(registry, "skopeo/multi", "v1", index)

    raw = tools("skopeo", "inspect", "--raw", "--tls-verify=false", dest).stdout
    assert raw.encode() == index.manifest.data

    out = f"oci:{tmp_path}/out:multi"
    tools("skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", dest, out)
    _assert_layout_holds(tmp_path / "out", "multi", index)


@pytest.mark.parametrize("docker_types", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_copy_all_between_repositories(
    tools: ContainersTools, registry: LiveRegistry, docker_types: bool
) -> None:
    """Registry to registry (blobs may be mounted across repositories), digests preserved."""
    kind = "list" if docker_types else "index"
    images = [
        make_image(f"skopeo {kind} {arch}", arch=arch, docker=docker_types) for arch in ("amd64", "arm64")
    ]
    index = build_index(images, docker=docker_types)
    push_to_registry(registry.url, f"skopeo/{kind}-src", index, "v1")

    src, dest = (f"docker://{registry.host}/skopeo/{kind}-{side}:v1" for side in ("src", "dest"))
    tools("skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", NO_TLS, src, dest)
    _assert_in_registry(registry, f"skopeo/{kind}-dest", "v1", index)


def test_copy_artifact_with_subject(
    tools: ContainersTools,
    registry: LiveRegistry,
    layout: Path,
    single: Image,
    artifact: Image,
    tmp_path: Path,
) -> None:
    repo = f"{registry.host}/skopeo/signed"
    tools("skopeo", "copy", "--preserve-digests", NO_TLS, f"oci:{layout}:single", f"docker://{repo}:v1")
    assert referrers(registry.url, "skopeo/signed", single.digest) == []

    dest = f"docker://{repo}:sig"
    tools("skopeo", "copy", "--preserve-digests", NO_TLS, f"oci:{layout}:artifact", dest)
    _assert_in_registry(registry, "skopeo/signed", "sig", artifact)
    assert fetch_manifest(registry.url, "skopeo/signed", "sig").json()["subject"]["digest"] == single.digest

    assert referrers(registry.url, "skopeo/signed", single.digest) == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": artifact.digest,
            "size": artifact.manifest.size,
            "artifactType": SIGNATURE_TYPE,
            "annotations": artifact.manifest.json()["annotations"],
        }
    ]
    # The artifact itself has no referrers, and another repository does not see this one's.
    assert referrers(registry.url, "skopeo/signed", artifact.digest) == []
    assert referrers(registry.url, "skopeo/single", single.digest) == []

    tools("skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", dest, f"oci:{tmp_path}/out:sig")
    _assert_layout_holds(tmp_path / "out", "sig", artifact)


def test_delete(tools: ContainersTools, registry: LiveRegistry) -> None:
    keep, gone = make_image("skopeo keep"), make_image("skopeo delete me")
    push_to_registry(registry.url, "skopeo/del", keep, "keep")
    push_to_registry(registry.url, "skopeo/del", gone, "gone")
    assert manifest_status(registry.url, "skopeo/del", gone.digest) == 200

    tools("skopeo", "delete", "--tls-verify=false", f"docker://{registry.host}/skopeo/del:gone")

    assert manifest_status(registry.url, "skopeo/del", gone.digest) == 404
    assert manifest_status(registry.url, "skopeo/del", "gone") == 404
    assert fetch_tags(registry.url, "skopeo/del") == ["keep"]
    assert fetch_manifest(registry.url, "skopeo/del", "keep").digest == keep.digest
    missing = tools(
        "skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/skopeo/del:gone", check=False
    )
    assert missing.returncode != 0


def test_list_tags(tools: ContainersTools, registry: LiveRegistry) -> None:
    image = make_image("skopeo tags")
    tags = ["v1", "v1.0", "latest", "2024-01-01", "a_b"]
    for tag in tags:
        push_to_registry(registry.url, "skopeo/tags", image, tag)

    out = json.loads(
        tools("skopeo", "list-tags", "--tls-verify=false", f"docker://{registry.host}/skopeo/tags").stdout
    )
    assert out["Repository"] == f"{registry.host}/skopeo/tags"
    assert sorted(out["Tags"]) == sorted(tags)

    unknown = tools(
        "skopeo", "list-tags", "--tls-verify=false", f"docker://{registry.host}/skopeo/none", check=False
    )
    assert unknown.returncode != 0


def test_tags_from_a_push_by_digest_pull_by_tag(
    tools: ContainersTools, registry: LiveRegistry, tmp_path: Path
) -> None:
    """No client here sends ``?tag=``: the tags are made over HTTP, then skopeo pulls one by tag
    and gets the original digest and objects; a sha512 manifest is read back by its digest
    (skopeo 1.9.3 reads it; its copy cannot verify sha512 content, a client limitation)."""
    image = make_image("skopeo tag parameters")
    digest = push_to_registry(registry.url, "skopeo/tagparam", image)
    r = httpx.put(
        f"{registry.url}/v2/skopeo/tagparam/manifests/{digest}",
        params=[("tag", "1.2.3"), ("tag", "1.2"), ("tag", "latest")],
        content=image.manifest.data,
        headers={"Content-Type": image.manifest.media_type},
    )
    assert r.status_code == 201 and r.headers.get_list("OCI-Tag") == ["1.2.3", "1.2", "latest"]
    src = f"docker://{registry.host}/skopeo/tagparam:1.2"
    tools("skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", src, f"oci:{tmp_path}/out:1.2")
    _assert_layout_holds(tmp_path / "out", "1.2", image)

    body512 = image.manifest.data.replace(b'"schemaVersion":2', b'"schemaVersion":2,"x-sha512":true')
    digest512 = "sha512:" + hashlib.sha512(body512).hexdigest()
    r = httpx.put(
        f"{registry.url}/v2/skopeo/tagparam/manifests/{digest512}",
        params={"tag": "s5"},
        content=body512,
        headers={"Content-Type": image.manifest.media_type},
    )
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest512
    for ref in (f"@{digest512}", ":s5"):
        raw = tools(
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{registry.host}/skopeo/tagparam{ref}",
        )
        assert raw.stdout.encode() == body512
