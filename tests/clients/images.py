"""Offline test images: busybox-static layers packed as OCI layouts, archives and registry uploads.

Everything is deterministic (fixed mtimes and owners, gzip without name or time, sorted JSON), so
the same inputs always give the same digests.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.regclient import digest_of, get_blob, get_manifest, tag_list

BUSYBOX = Path("/bin/busybox")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2024-01-01T00:00:00Z"
MTIME = 1704067200  # CREATED as a Unix time


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    """Content plus its media type; ``digest`` and ``descriptor`` are derived from the bytes."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Image:
    """One manifest with its config and layers (an image or an artifact)."""

    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...] = ()
    platform: Mapping[str, str] | None = None

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]


@dataclass(frozen=True)
class Index:
    """An image index (or Docker manifest list) and its child images."""

    manifest: Blob
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> list[Blob]:
        seen: dict[str, Blob] = {}
        for image in self.images:
            for blob in image.blobs():
                seen.setdefault(blob.digest, blob)
        return list(seen.values())


def _tar_info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


@functools.lru_cache(maxsize=1)
def busybox_layer() -> bytes:
    """The shared base layer: just ``/bin/busybox`` and ``/bin/sh``."""
    return layer_tar({})


def layer_tar(files: Mapping[str, bytes], *, busybox: bool = True) -> bytes:
    """An uncompressed layer tar: ``/bin/busybox`` (+ ``/bin/sh`` link) and ``files`` (path → bytes)."""
    entries: dict[str, tuple[bytes, int, bytes]] = {}
    if busybox:
        entries["bin/busybox"] = (tarfile.REGTYPE, 0o755, BUSYBOX.read_bytes())
        entries["bin/sh"] = (tarfile.SYMTYPE, 0o777, b"busybox")
    for path, data in files.items():
        entries[path.lstrip("/")] = (tarfile.REGTYPE, 0o644, data)
    dirs = sorted({"/".join(p.split("/")[:i]) for p in entries for i in range(1, p.count("/") + 1)})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            tar.addfile(_tar_info(d + "/", tarfile.DIRTYPE, 0o755))
        for path in sorted(entries):
            kind, mode, data = entries[path]
            if kind == tarfile.SYMTYPE:
                info = _tar_info(path, kind, mode)
                info.linkname = data.decode()
                tar.addfile(info)
            else:
                tar.addfile(_tar_info(path, kind, mode, len(data)), io.BytesIO(data))
    return out.getvalue()


@functools.lru_cache(maxsize=32)
def gzip_n(data: bytes) -> bytes:
    """Like ``gzip -n``: no file name, zero mtime, so equal input gives equal output."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def tar_members(layer: bytes) -> dict[str, bytes]:
    """Regular files of a (possibly gzipped) layer tar, path → content."""
    if layer[:2] == b"\x1f\x8b":
        layer = gzip.decompress(layer)
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member) if member.isfile() else None
            if f is not None:
                out[member.name.removeprefix("./").lstrip("/")] = f.read()
    return out


def diff_id(layer: bytes) -> str:
    """The uncompressed digest of a layer blob (what a config's ``rootfs.diff_ids`` lists)."""
    return digest_of(gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer)


def build_image(
    layers: Iterable[bytes],
    *,
    arch: str = "amd64",
    os_name: str = "linux",
    docker: bool = False,
    labels: Mapping[str, str] | None = None,
) -> Image:
    """An image from uncompressed layer tars (gzipped here); OCI media types unless ``docker``."""
    raw = list(layers)
    blobs = tuple(Blob(DOCKER_LAYER if docker else OCI_LAYER_GZIP, gzip_n(t)) for t in raw)
    diff_ids = tuple(digest_of(t) for t in raw)
    config_doc: dict[str, Any] = {
        "architecture": arch,
        "os": os_name,
        "created": CREATED,
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": CREATED, "created_by": "dockyard tests/clients/images.py"} for _ in raw],
    }
    config = Blob(DOCKER_CONFIG if docker else OCI_CONFIG, canonical_json(config_doc))
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    platform = {"architecture": arch, "os": os_name}
    return Image(Blob(media_type, canonical_json(manifest)), config, blobs, diff_ids, platform)


def build_index(images: Iterable[Image], *, docker: bool = False) -> Index:
    """An OCI index (or Docker manifest list) of single-platform images."""
    children = tuple(images)
    media_type = DOCKER_LIST if docker else OCI_INDEX
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [i.manifest.descriptor(platform=dict(i.platform or {})) for i in children],
    }
    return Index(Blob(media_type, canonical_json(doc)), children)


def build_artifact(subject: Blob, artifact_type: str, payload: bytes, payload_type: str) -> Image:
    """An OCI image manifest used as an artifact: empty config, one payload layer, a ``subject``."""
    config = Blob(OCI_EMPTY, b"{}")
    layer = Blob(payload_type, payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor(annotations={"org.opencontainers.image.title": "payload"})],
        "subject": subject.descriptor(),
        "annotations": {"org.opencontainers.image.created": CREATED},
    }
    return Image(Blob(OCI_MANIFEST, canonical_json(doc)), config, (layer,))


def _objects(item: Image | Index) -> tuple[list[Blob], list[Blob]]:
    """(blobs, manifests) of an image or index; manifests children first."""
    if isinstance(item, Index):
        return item.blobs(), [i.manifest for i in item.images] + [item.manifest]
    return item.blobs(), [item.manifest]


def write_oci_layout(directory: Path, refs: Mapping[str, Image | Index]) -> Path:
    """Write an OCI image layout holding ``refs`` (tag → image or index); returns ``directory``."""
    blob_dir = directory / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    entries = []
    for tag, item in refs.items():
        blobs, manifests = _objects(item)
        for blob in blobs + manifests:
            (blob_dir / blob.hex).write_bytes(blob.data)
        entries.append(item.manifest.descriptor(annotations={REF_NAME: tag}))
    (directory / "index.json").write_bytes(
        canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    )
    return directory


def read_oci_layout(directory: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    """(tag → manifest digest, digest → bytes of every blob) of an OCI layout, digests verified."""
    index = json.loads((directory / "index.json").read_bytes())
    tags = {
        m["annotations"][REF_NAME]: m["digest"]
        for m in index["manifests"]
        if REF_NAME in m.get("annotations", {})
    }
    blobs: dict[str, bytes] = {}
    for path in sorted((directory / "blobs" / "sha256").iterdir()):
        data = path.read_bytes()
        assert digest_of(data) == f"sha256:{path.name}", f"corrupt blob {path}"
        blobs[f"sha256:{path.name}"] = data
    return tags, blobs


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    tar.addfile(_tar_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))


def write_oci_archive(path: Path, layout: Path) -> Path:
    """Tar an OCI layout directory (what ``oci-archive:`` and ``ctr images import`` read)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for file in sorted(p for p in layout.rglob("*") if p.is_file()):
            _add_bytes(tar, file.relative_to(layout).as_posix(), file.read_bytes())
    return path


def write_docker_archive(path: Path, image: Image, repo_tag: str) -> Path:
    """A ``docker save`` style tar (manifest.json, config, gzipped layers) for ``docker load``."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, f"{image.config.hex}.json", image.config.data)
        layer_names = []
        for layer in image.layers:
            layer_names.append(f"{layer.hex}/layer.tar")
            _add_bytes(tar, layer_names[-1], layer.data)
        manifest = [{"Config": f"{image.config.hex}.json", "RepoTags": [repo_tag], "Layers": layer_names}]
        _add_bytes(tar, "manifest.json", canonical_json(manifest))
    return path


def push_to_registry(base_url: str, repo: str, item: Image | Index, tag: str | None = None) -> str:
    """Upload an image or index over plain HTTP (monolithic blob uploads); returns the manifest digest."""
    blobs, manifests = _objects(item)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for blob in blobs:
            if client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
                continue
            start = client.post(f"/v2/{repo}/blobs/uploads/")
            assert start.status_code == 202, start.text
            location = start.headers["Location"]
            sep = "&" if "?" in location else "?"
            done = client.put(
                f"{location}{sep}digest={blob.digest}",
                content=blob.data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert done.status_code == 201, done.text
        for manifest in manifests:
            ref = tag if manifest is item.manifest and tag else manifest.digest
            put = client.put(
                f"/v2/{repo}/manifests/{ref}",
                content=manifest.data,
                headers={"Content-Type": manifest.media_type},
            )
            assert put.status_code == 201, put.text
            assert put.headers["Docker-Content-Digest"] == manifest.digest
    return item.manifest.digest


@dataclass(frozen=True)
class Fetched:
    """A manifest as the registry serves it."""

    data: bytes
    media_type: str
    digest: str

    def json(self) -> Any:
        return json.loads(self.data)


def fetch_manifest(base_url: str, repo: str, ref: str) -> Fetched:
    """GET a manifest by tag or digest, accepting every manifest type; checks the digest header."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        r = get_manifest(client, repo, ref)
    assert r.status_code == 200, f"{repo}:{ref} -> {r.status_code} {r.text}"
    digest = r.headers["Docker-Content-Digest"]
    assert digest == digest_of(r.content)
    return Fetched(r.content, r.headers["Content-Type"].split(";")[0], digest)


def fetch_blob(base_url: str, repo: str, digest: str) -> bytes:
    """GET a blob (following redirects) and check its bytes match its digest."""
    with httpx.Client(base_url=base_url, follow_redirects=True, timeout=60) as client:
        r = get_blob(client, repo, digest)
    assert r.status_code == 200, f"{repo}@{digest} -> {r.status_code}"
    assert digest_of(r.content) == digest
    return r.content


def manifest_status(base_url: str, repo: str, ref: str) -> int:
    return httpx.head(
        f"{base_url}/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(MANIFEST_TYPES)}
    ).status_code


def referrers(base_url: str, repo: str, subject: str) -> list[dict[str, Any]]:
    """The descriptors ``GET /v2/<repo>/referrers/<subject>`` lists (asserting an OCI index answer)."""
    r = httpx.get(f"{base_url}/v2/{repo}/referrers/{subject}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == OCI_INDEX
    doc = r.json()
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == OCI_INDEX
    return list(doc["manifests"])


def fetch_tags(base_url: str, repo: str) -> list[str]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        return tag_list(client, repo)
