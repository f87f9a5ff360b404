"""Building blobs and manifests and pushing them through the API."""

from __future__ import annotations

import json
from typing import Any

import httpx

# The one definition of each, shared with the sync library (re-exported for the async tests).
from tests.regclient import digest_of as digest_of
from tests.regclient import error_codes as error_codes

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    digest = digest_of(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


async def push_image(
    client: httpx.AsyncClient,
    name: str,
    reference: str | None,
    *,
    seed: str = "a",
    media_type: str = OCI_MANIFEST,
    extra: dict[str, Any] | None = None,
) -> tuple[str, bytes]:
    """Push a config, one layer and a manifest; returns (manifest digest, manifest bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer-{seed}".encode() * 10
    await push_blob(client, name, config)
    await push_blob(client, name, layer)
    cfg_type = (
        "application/vnd.docker.container.image.v1+json" if media_type == DOCKER_MANIFEST else OCI_CONFIG
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(cfg_type, config),
        "layers": [descriptor(OCI_LAYER, layer)],
        **(extra or {}),
    }
    body = json.dumps(manifest).encode()
    digest = digest_of(body)
    r = await client.put(
        f"/v2/{name}/manifests/{reference or digest}", content=body, headers={"Content-Type": media_type}
    )
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    return digest, body
