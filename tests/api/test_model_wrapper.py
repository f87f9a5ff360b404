"""The registry model is a seam: a layer implementing ``RegistryModel`` in front of the registry
(as a pull-through cache will) serves blobs as streams and manifests from elsewhere, and the
API's handlers neither know nor reach past it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.config import parse_config
from dockyard.errors import BlobUnknown, ManifestUnknown
from dockyard.oci.digest import Digest
from dockyard.oci.manifest import Descriptor
from dockyard.oci.mediatypes import OCI_MANIFEST
from dockyard.storage.model import Admit, BlobSource, Chunks, PutResult, RegistryModel, StreamSource, Visible
from tests.api.helpers import digest_of, push_image

pytestmark = pytest.mark.anyio

UPSTREAM_BLOB = b"bytes that live upstream " * 100
UPSTREAM_MANIFEST = b'{"schemaVersion": 2, "mediaType": "%s", "layers": []}' % OCI_MANIFEST.encode()


class Upstream:
    """Serves ``mirror/*`` from memory (an "upstream"); everything else from ``inner``."""

    def __init__(self, inner: RegistryModel) -> None:
        self.inner = inner
        self.blobs = {Digest.of(UPSTREAM_BLOB): UPSTREAM_BLOB}
        self.manifests = {"latest": UPSTREAM_MANIFEST}
        self.pulled: list[str] = []

    def _blob(self, name: str, digest: Digest) -> bytes:
        if digest not in self.blobs:
            raise BlobUnknown(name, str(digest))
        return self.blobs[digest]

    async def stat_blob(self, name: str, digest: Digest) -> int:
        if name.startswith("mirror/"):
            return len(self._blob(name, digest))
        return await self.inner.stat_blob(name, digest)

    async def open_blob(self, name: str, digest: Digest) -> BlobSource:
        if not name.startswith("mirror/"):
            return await self.inner.open_blob(name, digest)
        data = self._blob(name, digest)

        async def chunks(offset: int, length: int | None) -> AsyncIterator[bytes]:
            end = len(data) if length is None else offset + length
            for at in range(offset, end, 100):  # in pieces, as a network stream would arrive
                yield data[at : min(at + 100, end)]

        return StreamSource(len(data), chunks)

    async def pull_manifest(
        self, name: str, reference: str | Digest, *, head: bool, admit: Admit | None = None
    ) -> tuple[Digest, str, bytes]:
        if not name.startswith("mirror/"):
            return await self.inner.pull_manifest(name, reference, head=head, admit=admit)
        body = self.manifests.get(str(reference)) if isinstance(reference, str) else None
        if body is None:
            raise ManifestUnknown(name, str(reference))
        if admit is not None:
            await admit(Digest.of(body), OCI_MANIFEST, body)
        self.pulled.append(f"{name}:{reference}")
        return Digest.of(body), OCI_MANIFEST, body

    # Everything else goes to the registry behind.

    async def delete_blob(self, name: str, digest: Digest) -> None:
        await self.inner.delete_blob(name, digest)

    async def mount_blob(
        self, name: str, digest: Digest, source: str | None, visible: Visible = None
    ) -> bool:
        return await self.inner.mount_blob(name, digest, source, visible)

    async def push_blob(self, name: str, digest: Digest, chunks: Chunks, declared: int | None) -> int:
        return await self.inner.push_blob(name, digest, chunks, declared)

    async def start_upload(self, name: str, algorithm: str = "sha256") -> str:
        return await self.inner.start_upload(name, algorithm)

    async def append_upload(self, name: str, upload_id: str, chunks: Chunks, *, start: int | None) -> int:
        return await self.inner.append_upload(name, upload_id, chunks, start=start)

    async def upload_status(self, name: str, upload_id: str) -> int:
        return await self.inner.upload_status(name, upload_id)

    async def finish_upload(self, name: str, upload_id: str, digest: Digest, chunks: Chunks | None) -> int:
        return await self.inner.finish_upload(name, upload_id, digest, chunks)

    async def cancel_upload(self, name: str, upload_id: str) -> None:
        await self.inner.cancel_upload(name, upload_id)

    async def put_manifest(
        self,
        name: str,
        reference: str | Digest,
        body: bytes,
        content_type: str | None,
        *,
        tags: Sequence[str] = (),
    ) -> PutResult:
        return await self.inner.put_manifest(name, reference, body, content_type, tags=tags)

    async def delete_manifest(self, name: str, reference: str | Digest, *, force: bool = False) -> None:
        await self.inner.delete_manifest(name, reference, force=force)

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        return await self.inner.tags_page(name, n, last)

    async def referrers(self, name: str, subject: Digest) -> list[Descriptor]:
        return await self.inner.referrers(name, subject)

    async def catalog_page(self, n: int, last: str | None, visible: Visible) -> tuple[list[str], bool]:
        return await self.inner.catalog_page(n, last, visible)

    async def delete_repository(self, name: str) -> None:
        await self.inner.delete_repository(name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_wrapping_model_serves_streams_and_manifests_from_elsewhere() -> None:
    services = create_services(parse_config({"storage": {"inmemory": {}}}))
    upstream = Upstream(services.registry)
    services.model = upstream
    transport = httpx.ASGITransport(app=RegistryApp(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        blob = f"/v2/mirror/app/blobs/{digest_of(UPSTREAM_BLOB)}"
        r = await client.get(blob)
        assert r.status_code == 200
        assert r.content == UPSTREAM_BLOB
        assert r.headers["Content-Length"] == str(len(UPSTREAM_BLOB))
        r = await client.get(blob, headers={"Range": "bytes=150-349"})
        assert r.status_code == 206
        assert r.content == UPSTREAM_BLOB[150:350]
        r = await client.head(blob)
        assert (r.status_code, r.headers["Content-Length"]) == (200, str(len(UPSTREAM_BLOB)))
        assert (await client.get(f"/v2/mirror/app/blobs/{digest_of(b'nowhere')}")).status_code == 404

        r = await client.get("/v2/mirror/app/manifests/latest")
        assert r.status_code == 200
        assert r.content == UPSTREAM_MANIFEST
        assert r.headers["Docker-Content-Digest"] == digest_of(UPSTREAM_MANIFEST)
        assert upstream.pulled == ["mirror/app:latest"]
        assert services.registry.catalog.is_known("mirror/app") is False  # nothing stored here

        # The rest still reaches the registry behind the layer.
        digest, body = await push_image(client, "local/app", "1")
        r = await client.get(f"/v2/local/app/manifests/{digest}")
        assert (r.status_code, r.content) == (200, body)
        assert (await client.get("/v2/local/app/tags/list")).json() == {"name": "local/app", "tags": ["1"]}
