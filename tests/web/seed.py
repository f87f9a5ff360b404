"""Realistic demo content pushed through the registry API (sync httpx): images with configs,
env, labels and history, a multi-platform index, and referrers (a signature and an SBOM)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY = b"{}"
HISTORY = [
    {"created_by": "/bin/sh -c #(nop) ADD file:3b1c9e0a in / "},
    {"created_by": "RUN apt-get update && apt-get install -y ca-certificates tzdata"},
    {"created_by": "COPY ./server /usr/local/bin/server"},
    {"created_by": "RUN useradd --system app"},
]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def blob(client: httpx.Client, name: str, data: bytes) -> None:
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(data)}, content=data)
    assert r.status_code == 201, r.text


def manifest(client: httpx.Client, name: str, ref: str, doc: dict[str, Any]) -> str:
    body = json.dumps(doc).encode()
    r = client.put(f"/v2/{name}/manifests/{ref}", content=body, headers={"Content-Type": doc["mediaType"]})
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def image(
    client: httpx.Client,
    name: str,
    tag: str | None,
    *,
    arch: str = "amd64",
    variant: str | None = None,
    layers: int = 3,
    layer_kb: int = 300,
    seed: str = "",
) -> tuple[str, dict[str, Any]]:
    layer_blobs = [
        hashlib.sha256(f"{name}{seed}{arch}{i}".encode()).digest() * (layer_kb * 32 // (i + 1))
        for i in range(layers)
    ]
    config = {
        "architecture": arch,
        "os": "linux",
        **({"variant": variant} if variant else {}),
        "created": "2026-11-20T10:15:00Z",
        "config": {
            "Entrypoint": ["/usr/local/bin/server"],
            "Cmd": ["--port", "8080"],
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
                f"APP_VERSION={tag or seed}",
                "LANG=C.UTF-8",
            ],
            "Labels": {
                "org.opencontainers.image.source": f"https://git.example.com/{name}",
                "org.opencontainers.image.version": tag or seed,
                "maintainer": "platform-team",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [digest_of(b) for b in layer_blobs]},
        "history": [
            *HISTORY[:layers],
            {"created_by": 'ENTRYPOINT ["/usr/local/bin/server"]', "empty_layer": True},
        ],
    }
    config_bytes = json.dumps(config).encode()
    blob(client, name, config_bytes)
    for b in layer_blobs:
        blob(client, name, b)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, config_bytes),
        "layers": [desc(OCI_LAYER, b) for b in layer_blobs],
    }
    body = json.dumps(doc).encode()
    return manifest(client, name, tag or digest_of(body), doc), doc


def multiarch(client: httpx.Client, name: str, tag: str) -> str:
    children = []
    for arch, variant in (("amd64", None), ("arm64", "v8"), ("arm", "v7")):
        _, doc = image(client, name, None, arch=arch, variant=variant, seed=tag)
        body = json.dumps(doc).encode()
        platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        children.append(desc(OCI_MANIFEST, body, platform=platform))
    return manifest(client, name, tag, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})


def referrer(
    client: httpx.Client, name: str, subject: str, subject_size: int, artifact_type: str, payload: bytes
) -> str:
    blob(client, name, EMPTY)
    blob(client, name, payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": desc("application/vnd.oci.empty.v1+json", EMPTY),
        "layers": [desc("application/octet-stream", payload)],
        "subject": {"mediaType": OCI_INDEX, "digest": subject, "size": subject_size},
    }
    body = json.dumps(doc).encode()
    return manifest(client, name, digest_of(body), doc)


def seed(client: httpx.Client) -> dict[str, str]:
    """The demo registry the screenshots show; returns digests the tests look for."""
    out: dict[str, str] = {}
    out["web"] = multiarch(client, "acme/web", "1.4.2")
    index_size = len(client.get("/v2/acme/web/manifests/1.4.2", headers={"Accept": OCI_INDEX}).content)
    referrer(
        client,
        "acme/web",
        out["web"],
        index_size,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        b"signature",
    )
    referrer(
        client, "acme/web", out["web"], index_size, "application/spdx+json", b'{"spdxVersion":"SPDX-2.3"}'
    )
    for tag in ("1.4.1", "1.4.0", "1.3.9", "latest"):
        image(client, "acme/web", tag, seed="web")
    for name, tags in {
        "acme/api": ["2.0.0", "2.0.1", "latest"],
        "acme/worker": ["0.9.0", "latest"],
        "library/debian": ["bookworm", "bookworm-slim", "trixie"],
        "library/alpine": ["3.20", "3.21", "latest"],
        "public/hello": ["v1", "v2"],
        "data/pipelines/ingest": ["2026.11.1"],
    }.items():
        for i, tag in enumerate(tags):
            image(client, name, tag, layers=2 + i % 3, layer_kb=200 + 150 * i, seed=tag)
    return out
