"""Names of the garbage collector's liveness records in the coordinator.

A writer that makes content reachable records it, by these keys, under the shared ``gc`` lock
(``Coordinator.referenced``); the collector reads the records back inside its exclusive sweep
batches (``Coordinator.last_referenced``) and keeps whatever was recorded since its barrier or
within the grace period. See ``storage.gc`` for the argument.
"""

from __future__ import annotations

from dockyard.oci.digest import Digest


def blob_key(digest: Digest) -> str:
    """Blob content (layers, configs, manifest bytes): global, like ``blobs/``."""
    return f"blob:{digest}"


def revision_key(name: str, digest: Digest) -> str:
    """A manifest revision of one repository (its ``_manifests/revisions`` link)."""
    return f"rev:{name}@{digest}"
