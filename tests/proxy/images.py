"""Images pushed to an upstream for the cache to pull: a config, layers of chosen sizes, an index."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

import httpx

from dockyard.oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from tests.api.helpers import push_blob

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    digest: str
    manifest: bytes
    blobs: dict[str, bytes]  # digest → bytes (config and layers)

    @property
    def layers(self) -> list[str]:
        return [d["digest"] for d in json.loads(self.manifest)["layers"]]


async def push(
    client: httpx.AsyncClient,
    name: str,
    tag: str | None,
    *,
    seed: str,
    sizes: tuple[int, ...] = (300_000,),
    arch: str = "amd64",
) -> Image:
    rng = random.Random(seed)
    config = json.dumps({"architecture": arch, "os": "linux", "seed": seed}).encode()
    layers = [rng.randbytes(n) for n in sizes]
    blobs = {digest(b): b for b in [config, *layers]}
    for blob in blobs.values():
        await push_blob(client, name, blob)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest(b), "size": len(b)} for b in layers],
        }
    ).encode()
    r = await client.put(
        f"/v2/{name}/manifests/{tag or digest(manifest)}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201, r.text
    return Image(digest(manifest), manifest, blobs)


async def push_index(client: httpx.AsyncClient, name: str, tag: str, images: dict[str, Image]) -> str:
    """An index of ``images`` by architecture (each pushed by digest already)."""
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "platform": {"os": "linux", "architecture": arch},
                }
                for arch, image in images.items()
            ],
        }
    ).encode()
    r = await client.put(f"/v2/{name}/manifests/{tag}", content=index, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 201, r.text
    return digest(index)
