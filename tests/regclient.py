"""A small OCI distribution client over httpx for tests against live servers (dockyard or distribution).

It pushes and pulls blobs and manifests the way real clients do, builds deterministic sample
images (real tar+gzip layers, JSON configs, OCI and Docker manifests, an OCI index) and snapshots
storage trees for byte-level comparison.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
V2 = "docker/registry/v2"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def indented_json(doc: Any) -> bytes:
    """JSON the way docker writes manifests (3-space indent, keys in insertion order): content
    whose digest no re-serialisation reproduces, so a registry must keep the bytes it was sent."""
    return json.dumps(doc, indent=3, sort_keys=False).encode()


def det_bytes(seed: str, size: int) -> bytes:
    """``size`` pseudo-random bytes, the same for the same seed (incompressible, deterministic)."""
    return random.Random(seed).randbytes(size)


def targz(files: dict[str, bytes]) -> bytes:
    """A reproducible gzip-compressed tar (fixed mtimes, owners, and no gzip timestamp)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


# -- HTTP operations -----------------------------------------------------------------------------


def _location(base: httpx.Response) -> str:
    location: str = base.headers["location"]
    return location


def with_digest(location: str, digest: str) -> str:
    """The upload URL plus ``digest=``, keeping its query (distribution's ``_state``): httpx's
    ``params=`` would replace the query instead of adding to it."""
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def start_upload(client: httpx.Client, repo: str) -> str:
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, (r.status_code, r.text)
    return _location(r)


def push_blob(client: httpx.Client, repo: str, data: bytes, *, mode: str = "monolithic") -> str:
    """Push ``data``; ``mode`` is ``monolithic`` (POST, PUT), ``chunked`` (POST, PATCH*, PUT) or
    ``single`` (POST ?digest=). Asserts 201 and the returned digest."""
    digest = digest_of(data)
    if mode == "single":
        r = client.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if r.status_code == 202:  # the registry may decline (distribution 2.8.2 does): upload the usual way
            r = client.put(
                with_digest(_location(r), digest),
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
    else:
        location = start_upload(client, repo)
        body = data
        if mode == "chunked":
            step = max(1, len(data) // 3 + 1)
            for offset in range(0, len(data), step):
                chunk = data[offset : offset + step]
                r = client.patch(
                    location,
                    content=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    },
                )
                assert r.status_code == 202, (r.status_code, r.text)
                location = _location(r)
            body = b""
        r = client.put(
            with_digest(location, digest),
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
    assert r.status_code == 201, (r.status_code, r.text)
    assert r.headers["docker-content-digest"] == digest
    return digest


def mount_blob(client: httpx.Client, repo: str, digest: str, source: str) -> None:
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201, (r.status_code, r.text)


def push_manifest(client: httpx.Client, repo: str, reference: str, body: bytes, media_type: str) -> str:
    r = client.put(f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type})
    assert r.status_code == 201, (r.status_code, r.text)
    digest = digest_of(body)
    assert r.headers["docker-content-digest"] == digest
    return digest


def get_manifest(client: httpx.Client, repo: str, reference: str) -> httpx.Response:
    return client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})


def get_blob(client: httpx.Client, repo: str, digest: str) -> httpx.Response:
    return client.get(f"/v2/{repo}/blobs/{digest}")


def tag_list(client: httpx.Client, repo: str) -> list[str]:
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200, (r.status_code, r.text)
    tags: list[str] = r.json().get("tags") or []
    return tags


def catalog(client: httpx.Client) -> list[str]:
    r = client.get("/v2/_catalog")
    assert r.status_code == 200, (r.status_code, r.text)
    repos: list[str] = r.json()["repositories"]
    return repos


def error_codes(r: httpx.Response) -> list[str]:
    return [e["code"] for e in r.json()["errors"]]


# -- sample content ------------------------------------------------------------------------------


@dataclass
class PushedManifest:
    repo: str
    reference: str  # a tag, or the digest when pushed by digest
    media_type: str
    body: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.body)


@dataclass
class PushedBlob:
    repo: str
    data: bytes
    mode: str = "monolithic"  # monolithic | chunked | single | mount:<source repo>

    @property
    def digest(self) -> str:
        return digest_of(self.data)


@dataclass
class ImageSet:
    """What a test pushes, in push order: blobs first, then manifests (children before indexes)."""

    blobs: list[PushedBlob] = field(default_factory=list)
    manifests: list[PushedManifest] = field(default_factory=list)

    def repos(self) -> list[str]:
        return sorted({b.repo for b in self.blobs} | {m.repo for m in self.manifests})

    def tags(self, repo: str) -> dict[str, str]:
        """tag -> digest it points to after every push (later pushes move tags)."""
        out: dict[str, str] = {}
        for m in self.manifests:
            if m.repo == repo and not m.reference.startswith("sha256:"):
                out[m.reference] = m.digest
        return out

    def manifest_by_digest(self, digest: str) -> PushedManifest:
        return next(m for m in self.manifests if m.digest == digest)


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def _config(arch: str, layers: list[bytes]) -> bytes:
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest() for layer in layers]
    doc = {
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": f"test layer {i}"} for i in range(len(layers))
        ],
    }
    return indented_json(doc)


def image_manifest(media_type: str, config: bytes, layers: list[bytes]) -> bytes:
    docker = media_type == DOCKER_MANIFEST
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": _descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [_descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer) for layer in layers],
    }
    return indented_json(doc)


def index_manifest(children: list[tuple[bytes, str, str]]) -> bytes:
    """An OCI index of (manifest bytes, media type, architecture)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            _descriptor(media_type, body, platform={"architecture": arch, "os": "linux"})
            for body, media_type, arch in children
        ],
        "annotations": {"org.opencontainers.image.title": "interop sample"},
    }
    return indented_json(doc)


@dataclass
class SampleImage:
    """One multi-arch image built from deterministic content."""

    layers: list[bytes]
    config_amd64: bytes
    config_arm64: bytes
    oci_amd64: bytes
    oci_arm64: bytes
    docker_amd64: bytes
    index: bytes


def sample_image(seed: str) -> SampleImage:
    base = targz(
        {
            "etc/os-release": f"NAME=sample-{seed}\n".encode(),
            "bin/tool": det_bytes(f"{seed}-tool", 200_000),
        }
    )
    app = targz({"app/data.bin": det_bytes(f"{seed}-app", 50_000), "app/README": b"hello\n"})
    arm = targz({"bin/tool": det_bytes(f"{seed}-arm", 120_000)})
    config_amd64 = _config("amd64", [base, app])
    config_arm64 = _config("arm64", [arm, app])
    oci_amd64 = image_manifest(OCI_MANIFEST, config_amd64, [base, app])
    oci_arm64 = image_manifest(OCI_MANIFEST, config_arm64, [arm, app])
    docker_amd64 = image_manifest(DOCKER_MANIFEST, config_amd64, [base, app])
    index = index_manifest([(oci_amd64, OCI_MANIFEST, "amd64"), (oci_arm64, OCI_MANIFEST, "arm64")])
    return SampleImage(
        [base, app, arm], config_amd64, config_arm64, oci_amd64, oci_arm64, docker_amd64, index
    )


def interop_set() -> ImageSet:
    """Two repositories: every upload style, an OCI image, a Docker schema2 image, an OCI index with
    two children, pushes by tag and by digest, a moved tag, and a cross-repository mount."""
    img = sample_image("interop")
    repo, other = "interop/app", "interop/other"
    base, app, arm = img.layers
    s = ImageSet()
    s.blobs += [
        PushedBlob(repo, base, "chunked"),
        PushedBlob(repo, app, "monolithic"),
        PushedBlob(repo, arm, "single"),
        PushedBlob(repo, img.config_amd64, "monolithic"),
        PushedBlob(repo, img.config_arm64, "single"),
        PushedBlob(other, base, f"mount:{repo}"),
        PushedBlob(other, app, f"mount:{repo}"),
        PushedBlob(other, img.config_amd64, f"mount:{repo}"),
        PushedBlob(other, det_bytes("loose", 70_000), "chunked"),  # a blob no manifest references
    ]
    oci_digest = digest_of(img.oci_amd64)
    s.manifests += [
        PushedManifest(repo, "moving", DOCKER_MANIFEST, img.docker_amd64),
        PushedManifest(repo, "v1-oci", OCI_MANIFEST, img.oci_amd64),
        PushedManifest(repo, oci_digest, OCI_MANIFEST, img.oci_amd64),
        PushedManifest(repo, digest_of(img.oci_arm64), OCI_MANIFEST, img.oci_arm64),
        PushedManifest(repo, "v1-docker", DOCKER_MANIFEST, img.docker_amd64),
        PushedManifest(repo, "v1", OCI_INDEX, img.index),
        PushedManifest(repo, digest_of(img.index), OCI_INDEX, img.index),
        PushedManifest(repo, "moving", OCI_MANIFEST, img.oci_amd64),
        PushedManifest(other, "latest", DOCKER_MANIFEST, img.docker_amd64),
        PushedManifest(other, digest_of(img.oci_amd64), OCI_MANIFEST, img.oci_amd64),
    ]
    return s


def push_set(client: httpx.Client, images: ImageSet) -> None:
    for blob in images.blobs:
        if blob.mode.startswith("mount:"):
            mount_blob(client, blob.repo, blob.digest, blob.mode.removeprefix("mount:"))
        else:
            push_blob(client, blob.repo, blob.data, mode=blob.mode)
    for m in images.manifests:
        push_manifest(client, m.repo, m.reference, m.body, m.media_type)


@dataclass(frozen=True)
class Pulled:
    """One response, with the body reduced to its sha256 and length (readable failure messages)."""

    status: int
    digest: str | None
    content_type: str | None
    body_sha256: str
    size: int

    def holds(self, body: bytes) -> bool:
        return (self.body_sha256, self.size) == (digest_of(body), len(body))


def _pulled(r: httpx.Response) -> Pulled:
    return Pulled(
        r.status_code,
        r.headers.get("docker-content-digest"),
        r.headers.get("content-type"),
        digest_of(r.content),
        len(r.content),
    )


def pull_set(client: httpx.Client, images: ImageSet) -> dict[str, Any]:
    """Everything a client can read back about ``images``, keyed for comparison between servers."""
    out: dict[str, Any] = {"catalog": sorted(catalog(client))}
    for repo in images.repos():
        out[f"tags {repo}"] = sorted(tag_list(client, repo))
    for blob in images.blobs:
        out[f"blob {blob.repo} {blob.digest}"] = _pulled(get_blob(client, blob.repo, blob.digest))
        head = client.head(f"/v2/{blob.repo}/blobs/{blob.digest}")
        out[f"blob-head {blob.repo} {blob.digest}"] = (head.status_code, head.headers.get("content-length"))
    for m in images.manifests:
        out[f"manifest {m.repo} {m.digest}"] = _pulled(get_manifest(client, m.repo, m.digest))
    for repo in images.repos():
        for tag in images.tags(repo):
            out[f"manifest {repo} {tag}"] = _pulled(get_manifest(client, repo, tag))
    return out


def assert_pulled_intact(pulled: dict[str, Any], images: ImageSet) -> None:
    """``pulled`` (from :func:`pull_set`) holds exactly what was pushed."""
    assert pulled["catalog"] == sorted(images.repos())
    for repo in images.repos():
        assert pulled[f"tags {repo}"] == sorted(images.tags(repo)), repo
    for blob in images.blobs:
        got = pulled[f"blob {blob.repo} {blob.digest}"]
        assert got.status == 200, (blob.repo, blob.digest, got.status)
        assert got.holds(blob.data)
        assert got.digest == blob.digest
        assert pulled[f"blob-head {blob.repo} {blob.digest}"] == (200, str(len(blob.data)))
    for m in images.manifests:
        got = pulled[f"manifest {m.repo} {m.digest}"]
        assert (got.status, got.digest, got.content_type) == (200, m.digest, m.media_type), m.reference
        assert got.holds(m.body)
    for repo in images.repos():
        for tag, digest in images.tags(repo).items():
            want = images.manifest_by_digest(digest)
            got = pulled[f"manifest {repo} {tag}"]
            assert (got.status, got.digest, got.content_type) == (200, digest, want.media_type), (repo, tag)
            assert got.holds(want.body)


# -- storage trees -------------------------------------------------------------------------------


def tree_files(root: Path, *, skip_uploads: bool = True) -> dict[str, bytes | int]:
    """Relative path → content (link files) or size (everything else) under ``<root>/docker/registry/v2``."""
    base = root / V2
    out: dict[str, bytes | int] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if skip_uploads and "_uploads" in dirnames:
            dirnames.remove("_uploads")
        for name in filenames:
            full = Path(dirpath, name)
            rel = str(full.relative_to(base))
            out[rel] = full.read_bytes() if name == "link" else full.stat().st_size
    return out


def tree_dirs(root: Path) -> set[str]:
    base = root / V2
    out: set[str] = set()
    for dirpath, dirnames, _ in os.walk(base):
        if "_uploads" in dirnames:
            dirnames.remove("_uploads")
        out.update(str(Path(dirpath, d).relative_to(base)) for d in dirnames)
    return out


def stray_temp_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".tmp-" in p.name]


def blob_path(root: Path, digest: str) -> Path:
    hex_ = digest.removeprefix("sha256:")
    return root / V2 / "blobs" / "sha256" / hex_[:2] / hex_


# -- streaming -----------------------------------------------------------------------------------


class StreamedData:
    """``total`` bytes produced chunk by chunk (never held in memory), hashed as they are produced."""

    def __init__(self, total: int, chunk: int = 1 << 20, seed: str = "stream") -> None:
        self.total = total
        self.chunk = chunk
        self.block = bytearray(det_bytes(seed, chunk))
        self.hasher = hashlib.sha256()
        self.sent = 0

    def chunks(self) -> Iterator[bytes]:
        index = 0
        while self.sent < self.total:
            n = min(self.chunk, self.total - self.sent)
            self.block[:8] = index.to_bytes(8, "big")  # every chunk differs
            piece = bytes(self.block[:n])
            self.hasher.update(piece)
            self.sent += n
            index += 1
            yield piece

    def expected_chunk(self, index: int) -> bytes:
        block = bytearray(self.block)
        block[:8] = index.to_bytes(8, "big")
        return bytes(block)

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


def slow_chunks(data: bytes, pieces: int, delay: float) -> Iterable[bytes]:
    step = -(-len(data) // pieces)
    for offset in range(0, len(data), step):
        yield data[offset : offset + step]
        time.sleep(delay)


# -- OCI image layouts (for skopeo's oci: transport) ---------------------------------------------


def write_oci_layout(directory: Path, contents: list[bytes], refs: dict[str, tuple[bytes, str]]) -> Path:
    """An OCI image layout holding ``contents`` as blobs and ``refs`` (name → (manifest, media type))
    in ``index.json``."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in contents:
        (blobs / digest_of(data).removeprefix("sha256:")).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    manifests = [
        _descriptor(media_type, body, annotations={"org.opencontainers.image.ref.name": name})
        for name, (body, media_type) in refs.items()
    ]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    (directory / "index.json").write_text(json.dumps(index))
    return directory


def layout_blobs(directory: Path) -> dict[str, bytes]:
    """digest → bytes of every blob in an OCI image layout."""
    return {"sha256:" + p.name: p.read_bytes() for p in (directory / "blobs" / "sha256").iterdir()}
