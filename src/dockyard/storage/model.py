"""The registry model: what the registry API's handlers may ask of the registry, as one protocol.

Handlers call only this (through ``Services.model``), never the sub-stores, the driver or the
storage layout. ``storage.registry.Registry`` implements it over a storage driver; a wrapper that
implements the same protocol (a pull-through cache serving blobs as streams and manifests from an
upstream, an auditing or policy layer) can stand in front of it without the handlers knowing.
Every change is committed by the model, which then tells its event sink (``dockyard.events``).

Errors are the domain errors of ``dockyard.errors`` (``BlobUnknown``, ``ManifestUnknown``,
``NameUnknown``, ``QuotaExceeded``, ...); the API translates them once (``api.errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dockyard.oci.digest import Digest
from dockyard.oci.manifest import Descriptor

if TYPE_CHECKING:  # they use the registry, which implements this module's protocols
    from dockyard.storage.gc import GCOptions, GCReport, Progress
    from dockyard.storage.retention import Policy, RetentionReport

# Who may see a repository: None is everyone; else a predicate on names (``AccessController.visible``).
Visible = Callable[[str], bool] | None
Chunks = AsyncIterator[bytes]
# A check a manifest must pass before it is served as a pull (``scan.policy``): given its
# digest, media type and bytes, it returns, or raises the refusal (``RegistryError``).
Admit = Callable[[Digest, str, bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: Digest
    subject: Digest | None


class BlobSource(Protocol):
    """Where a blob's bytes come from, in the order a response prefers them: a URL the client may
    fetch the whole blob from, a local file the server can send without Python touching the
    bytes, and always a stream."""

    @property
    def size(self) -> int: ...

    async def redirect_url(self) -> str | None:
        """A URL serving the whole blob, valid for a while (None: serve it here)."""
        ...

    def local_path(self) -> str | None:
        """A local file holding exactly the blob (None: stream it)."""
        ...

    def read(self, offset: int = 0, length: int | None = None) -> Chunks:
        """The bytes from ``offset``, ``length`` of them (None: to the end)."""
        ...


@dataclass(frozen=True, slots=True)
class StreamSource:
    """A blob that is only a stream (a wrapper's source, e.g. bytes fetched from elsewhere):
    ``open(offset, length)`` yields the bytes."""

    size: int
    open: Callable[[int, int | None], Chunks]

    async def redirect_url(self) -> str | None:
        return None

    def local_path(self) -> str | None:
        return None

    def read(self, offset: int = 0, length: int | None = None) -> Chunks:
        return self.open(offset, length)


class RegistryModel(Protocol):
    """The operations of the OCI distribution API, one method each (a repository is ``name``)."""

    # -- blobs ---------------------------------------------------------------------------------

    async def stat_blob(self, name: str, digest: Digest) -> int:
        """The size of a blob visible in ``name``; ``BlobUnknown`` otherwise."""
        ...

    async def open_blob(self, name: str, digest: Digest) -> BlobSource:
        """A blob visible in ``name``, to be served; ``BlobUnknown`` otherwise."""
        ...

    async def delete_blob(self, name: str, digest: Digest) -> None:
        """Unlink a blob from ``name`` (garbage collection frees the bytes later)."""
        ...

    async def mount_blob(
        self, name: str, digest: Digest, source: str | None, visible: Visible = None
    ) -> bool:
        """Link an existing blob into ``name`` from ``source``, or when ``source`` is None from a
        repository ``visible`` allows (any repository when ``visible`` is None). False when the
        blob cannot be mounted that way: the client uploads it instead."""
        ...

    # -- uploads -------------------------------------------------------------------------------

    async def push_blob(self, name: str, digest: Digest, chunks: Chunks, declared: int | None) -> int:
        """A whole blob in one request; ``declared`` (Content-Length) is checked against the quota
        before a byte is stored. Returns the size."""
        ...

    async def start_upload(self, name: str, algorithm: str = "sha256") -> str:
        """A new upload session whose bytes are hashed with ``algorithm`` as they arrive (the
        client's ``digest-algorithm``); returns its id."""
        ...

    async def append_upload(self, name: str, upload_id: str, chunks: Chunks, *, start: int | None) -> int:
        """Append to a session (at ``start`` when given: ``RangeMismatch`` unless the data ends
        there); returns the session's size."""
        ...

    async def upload_status(self, name: str, upload_id: str) -> int:
        """The number of bytes a session holds; ``UploadUnknown`` if there is no such session."""
        ...

    async def finish_upload(self, name: str, upload_id: str, digest: Digest, chunks: Chunks | None) -> int:
        """Append the last bytes, check the digest and the quota, publish the blob; its size."""
        ...

    async def cancel_upload(self, name: str, upload_id: str) -> None: ...

    # -- manifests and tags --------------------------------------------------------------------

    async def pull_manifest(
        self, name: str, reference: str | Digest, *, head: bool, admit: Admit | None = None
    ) -> tuple[Digest, str, bytes]:
        """(digest, media type, exact bytes) of a manifest a client fetches (``head`` for HEAD);
        ``admit`` (a pull policy's check) runs on it before the pull is told to anyone."""
        ...

    async def put_manifest(
        self,
        name: str,
        reference: str | Digest,
        body: bytes,
        content_type: str | None,
        *,
        tags: Sequence[str] = (),
    ) -> PutResult:
        """Store a manifest under ``reference`` (a tag: its sha256 digest; a digest: exactly that
        one, sha256 or sha512) and point ``tags`` (validated; only with a digest) at that digest."""
        ...

    async def delete_manifest(self, name: str, reference: str | Digest, *, force: bool = False) -> None:
        """Untag (a tag) or delete a manifest (a digest; refused while an index lists it unless
        ``force``)."""
        ...

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        """Up to ``n`` (None: all) tags of ``name`` sorted after ``last``, and whether more remain;
        ``NameUnknown`` if there is no such repository."""
        ...

    async def referrers(self, name: str, subject: Digest) -> list[Descriptor]:
        """Descriptors of the manifests in ``name`` whose subject is ``subject``."""
        ...

    # -- repositories --------------------------------------------------------------------------

    async def catalog_page(self, n: int, last: str | None, visible: Visible) -> tuple[list[str], bool]:
        """Up to ``n`` repository names sorted after ``last`` that ``visible`` allows, and whether
        more remain."""
        ...

    async def delete_repository(self, name: str) -> None: ...


class MaintenanceModel(Protocol):
    """What the admin API and the command line run on demand: a collection and its last report,
    the quotas' usage, retention. Like ``RegistryModel`` for the handlers, callers hold this, not
    the registry and its sub-stores (``storage.upkeep.RegistryMaintenance`` implements it)."""

    async def collect(self, options: GCOptions, progress: Progress | None = None) -> GCReport:
        """Run a collection now (``CollectionRunning`` if another is running)."""

    async def last_collection(self) -> dict[str, Any] | None:
        """The last collection's report, as stored; None before the first."""

    async def quota_report(self) -> list[dict[str, Any]]:
        """Each quota rule with its usage (empty without quotas)."""

    async def apply_retention(
        self, policies: list[Policy], *, dry_run: bool, force: bool, grace_seconds: float
    ) -> RetentionReport: ...
