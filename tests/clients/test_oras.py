"""oras-py: push/pull of files (monolithic and chunked), and an artifact with a ``subject``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import oras.client
import oras.container
import oras.oci
import pytest

from tests.clients.conftest import make_image
from tests.clients.images import (
    OCI_MANIFEST,
    fetch_blob,
    fetch_manifest,
    fetch_tags,
    push_to_registry,
    referrers,
)
from tests.regclient import digest_of
from tests.servers.dockyard import LiveRegistry


@pytest.fixture
def client(registry: LiveRegistry) -> oras.client.OrasClient:
    return oras.client.OrasClient(hostname=registry.host, insecure=True)


def _write_files(directory: Path) -> dict[str, bytes]:
    files = {
        "notes.txt": b"hello from oras\n",
        "data.bin": bytes(range(256)) * 1200,  # 300 KiB: several chunks when chunked
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return files


@pytest.mark.parametrize("chunked", [False, True], ids=["monolithic", "chunked"])
def test_push_pull_files(
    client: oras.client.OrasClient,
    registry: LiveRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunked: bool,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    monkeypatch.chdir(src)  # oras-py only pushes files under the working directory
    files = _write_files(src)
    repo = f"oras/files-{'chunked' if chunked else 'mono'}"
    target = f"{registry.host}/{repo}:v1"

    response = client.push(
        target=target, files=sorted(files), do_chunked=chunked, chunk_size=64 * 1024, quiet=True
    )
    assert response.status_code == 201
    manifest = fetch_manifest(registry.url, repo, "v1")
    assert manifest.media_type == OCI_MANIFEST
    assert response.headers["Docker-Content-Digest"] == manifest.digest
    layers = manifest.json()["layers"]
    assert {la["annotations"]["org.opencontainers.image.title"]: la["digest"] for la in layers} == {
        name: digest_of(data) for name, data in files.items()
    }
    for layer in layers:
        fetch_blob(registry.url, repo, layer["digest"])  # present, bytes match the digest

    out = tmp_path / "out"
    pulled = client.pull(target=target, outdir=str(out))
    assert sorted(Path(p).name for p in pulled) == sorted(files)
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    assert client.get_tags(target) == ["v1"]


def test_push_with_subject(
    client: oras.client.OrasClient, registry: LiveRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_image("oras subject")
    push_to_registry(registry.url, "oras/app", image, "v1")
    raw = fetch_manifest(registry.url, "oras/app", "v1")  # the Subject comes from the served bytes
    subject = oras.oci.Subject(mediaType=raw.media_type, digest=raw.digest, size=len(raw.data))
    assert subject.digest == "sha256:" + hashlib.sha256(image.manifest.data).hexdigest()

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sbom.json").write_text('{"packages": ["busybox"]}')
    response = client.push(
        target=f"{registry.host}/oras/app:sbom",
        files=["sbom.json:application/vnd.dockyard.sbom+json"],
        subject=subject,
        quiet=True,
    )
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == image.digest
    artifact = fetch_manifest(registry.url, "oras/app", "sbom")
    assert artifact.digest == response.headers["Docker-Content-Digest"]
    assert artifact.json()["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": image.digest,
        "size": image.manifest.size,
    }

    listed = referrers(registry.url, "oras/app", image.digest)
    assert [(d["digest"], d["size"], d["mediaType"]) for d in listed] == [
        (artifact.digest, len(artifact.data), OCI_MANIFEST)
    ]
    # oras-py's artifact has no artifactType; the registry reports the config media type instead.
    assert listed[0]["artifactType"] == artifact.json()["config"]["mediaType"]
    assert referrers(registry.url, "oras/app", artifact.digest) == []
    assert sorted(fetch_tags(registry.url, "oras/app")) == ["sbom", "v1"]

    pulled = client.pull(target=f"{registry.host}/oras/app:sbom", outdir=str(tmp_path / "out"))
    assert [Path(p).read_text() for p in pulled] == ['{"packages": ["busybox"]}']


def test_sha512_image_pulled_by_digest(client: oras.client.OrasClient, registry: LiveRegistry) -> None:
    """A sha512 image (blobs and manifest addressed by sha512, tagged with ``?tag=``) read back by
    oras-py by its sha512 digest and by tag: the same manifest, and blobs whose sha512 matches."""
    image = make_image("oras sha512")
    blobs = {"sha512:" + hashlib.sha512(b.data).hexdigest(): b for b in image.blobs()}
    for digest, blob in blobs.items():
        r = httpx.post(
            f"{registry.url}/v2/oras/five/blobs/uploads/", params={"digest": digest}, content=blob.data
        )
        assert r.status_code == 201, r.text
    doc = image.manifest.json()
    for desc in [doc["config"], *doc["layers"]]:
        desc["digest"] = next(d for d, b in blobs.items() if b.digest == desc["digest"])
    body = json.dumps(doc).encode()
    digest = "sha512:" + hashlib.sha512(body).hexdigest()
    r = httpx.put(
        f"{registry.url}/v2/oras/five/manifests/{digest}",
        params={"tag": "v5"},
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201 and r.headers.get_list("OCI-Tag") == ["v5"]
    by_digest = client.get_manifest(f"{registry.host}/oras/five@{digest}")
    assert by_digest == doc == client.get_manifest(f"{registry.host}/oras/five:v5")
    container = oras.container.Container(f"{registry.host}/oras/five")
    for layer in by_digest["layers"]:
        got = client.get_blob(container, layer["digest"])
        assert got.status_code == 200
        assert "sha512:" + hashlib.sha512(got.content).hexdigest() == layer["digest"]
