"""Pushing hostile documents and reading a repository back through every read route."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.helpers import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of, push_blob


async def push_config_image(
    client: httpx.AsyncClient, name: str, tag: str, config: bytes, **extra: Any
) -> tuple[httpx.Response, str]:
    """Push ``config`` as an image's config blob (configs are opaque blobs: always accepted)."""
    await push_blob(client, name, config)
    layer = b"layer of " + tag.encode()
    await push_blob(client, name, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer)],
        **extra,
    }
    body = json.dumps(manifest).encode()
    r = await client.put(f"/v2/{name}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    return r, digest_of(body)


async def push_index(
    client: httpx.AsyncClient, name: str, tag: str, platform: Any
) -> tuple[httpx.Response, str]:
    """An index with one valid child image whose platform entry is ``platform``."""
    _, child = await push_config_image(client, name, tag + "-child", b'{"os":"linux","architecture":"amd64"}')
    child_body = (await client.get(f"/v2/{name}/manifests/{child}")).content
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body), "platform": platform}
        ],
    }
    body = json.dumps(index).encode()
    r = await client.put(f"/v2/{name}/manifests/{tag}", content=body, headers={"Content-Type": OCI_INDEX})
    return r, digest_of(body)


def read_urls(name: str, tag: str, digest: str) -> list[str]:
    """Every route that reads ``name`` (Hub, UI, admin, OCI) for one tag and its digest."""
    namespace, _, repo = name.rpartition("/")
    hub = f"/v2/repositories/{namespace or 'library'}/{repo}"
    ns_hub = f"/v2/namespaces/{namespace or 'library'}/repositories/{repo}"
    return [
        f"{hub}/tags/",
        f"{hub}/tags/{tag}/",
        f"{hub}/",
        f"{ns_hub}/tags",
        f"{ns_hub}/tags/{tag}",
        f"{ns_hub}",
        f"/v2/repositories/{namespace or 'library'}/",
        "/",
        f"/?q={repo}",
        f"/ui/repository?name={name}",
        f"/ui/image?name={name}&ref={tag}",
        f"/ui/image?name={name}&ref={digest}",
        "/ui/usage",
        f"/admin/v1/repositories/{name}/tags",
        f"/admin/v1/repositories/{name}/manifests/{tag}",
        f"/admin/v1/repositories/{name}/manifests/{digest}",
        "/admin/v1/usage",
        f"/v2/{name}/tags/list",
        f"/v2/{name}/manifests/{tag}",
        f"/v2/{name}/manifests/{digest}",
        f"/v2/{name}/referrers/{digest}",
        "/v2/_catalog",
    ]


async def statuses(client: httpx.AsyncClient, urls: list[str]) -> dict[str, int]:
    return {url: (await client.get(url)).status_code for url in urls}


def server_errors(found: dict[str, int]) -> dict[str, int]:
    return {url: status for url, status in found.items() if status >= 500}
