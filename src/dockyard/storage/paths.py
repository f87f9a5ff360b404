"""The on-storage layout: the only module that builds storage paths.

It is byte-compatible with the CNCF distribution registry's filesystem driver, so a data
directory can be served by either::

    /docker/registry/v2/
    ├── blobs/<alg>/<first two hex>/<hex>/data        content: layers, configs AND manifests
    └── repositories/<name...>/                        name may contain '/', e.g. library/ubuntu
        ├── _layers/<alg>/<hex>/link                   the blob is visible in this repository
        ├── _manifests/
        │   ├── revisions/<alg>/<hex>/link             the manifest is in this repository
        │   └── tags/<tag>/
        │       ├── current/link                       digest the tag points to now
        │       └── index/<alg>/<hex>/link             every digest the tag ever pointed to
        ├── _uploads/<uuid>/{data,startedat}           upload sessions in progress (dockyard adds
        │                                              ``digestalgorithm`` for a non-sha256 one)
        └── _referrers/<subject alg>/<subject hex>/<alg>/<hex>/link
                                                       dockyard's addition: manifests whose
                                                       ``subject`` is that digest (distribution
                                                       ignores the directory)

Every link file holds the digest string (``sha256:<hex>``) with no newline. Callers pass names
and tags that ``oci.reference`` has already validated; digests are ``oci.digest.Digest`` values.
"""

from __future__ import annotations

import re

from dockyard.oci.digest import Digest, DigestError

ROOT = "/docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"
# dockyard's own files beside distribution's tree (distribution never looks here).
GC_LAST_REPORT = f"{ROOT}/_dockyard/gc-last-report.json"
LAST_PULLED = f"{ROOT}/_dockyard/last-pulled.json"  # derived (browse.pulls): safe to delete
PULL_COUNTS = f"{ROOT}/_dockyard/pull-counts.json"  # derived (browse.pulls): counts start over
NOTIFICATIONS = f"{ROOT}/_dockyard/notifications"  # the webhook queue (dockyard.notify)
NOTIFICATION_SPOOL = f"{NOTIFICATIONS}/spool"  # events, one file per group commit
NOTIFICATION_ENDPOINTS = f"{NOTIFICATIONS}/endpoints"  # each endpoint's progress and health
AUDIT = f"{ROOT}/_dockyard/audit"  # the audit log (dockyard.audit): a folder per UTC day
SCANS = f"{ROOT}/_dockyard/scans"  # the scan queue and results (dockyard.scan): queue/, results/
UI_SESSION_KEY = f"{ROOT}/_dockyard/ui-session-key"  # signs web UI sessions (web.sessions)
UPLOAD_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_data(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def manifests_dir(name: str) -> str:
    return f"{repository(name)}/_manifests"


def layer_dir(name: str, digest: Digest) -> str:
    return f"{repository(name)}/_layers/{digest.algorithm}/{digest.hex}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{layer_dir(name, digest)}/link"


def revisions_dir(name: str) -> str:
    return f"{manifests_dir(name)}/revisions"


def revision_dir(name: str, digest: Digest) -> str:
    return f"{revisions_dir(name)}/{digest.algorithm}/{digest.hex}"


def revision_link(name: str, digest: Digest) -> str:
    return f"{revision_dir(name, digest)}/link"


def tags_dir(name: str) -> str:
    return f"{manifests_dir(name)}/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags_dir(name)}/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def tag_index_link(name: str, tag: str, digest: Digest) -> str:
    return f"{tag_dir(name, tag)}/index/{digest.algorithm}/{digest.hex}/link"


def uploads_dir(name: str) -> str:
    return f"{repository(name)}/_uploads"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{uploads_dir(name)}/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/data"


def upload_startedat(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/startedat"


def upload_algorithm(name: str, upload_id: str) -> str:
    """dockyard's: the ``digest-algorithm`` a session was started with, when not sha256
    (distribution ignores other files in an upload's directory)."""
    return f"{upload_dir(name, upload_id)}/digestalgorithm"


def referrers_dir(name: str, subject: Digest) -> str:
    return f"{repository(name)}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_link(name: str, subject: Digest, digest: Digest) -> str:
    return f"{referrers_dir(name, subject)}/{digest.algorithm}/{digest.hex}/link"


def digests_in(tree: dict[str, list[str]], depth: int) -> list[Digest]:
    """Digests named by a listed directory tree (``CheckedDriver.list_tree``): ``<alg>/<hex>``
    (depth 2: links) or ``<alg>/<xx>/<hex>`` (depth 3: blobs); malformed names are skipped."""
    out = []
    for rel, children in tree.items():
        parts = rel.split("/") if rel else []
        if len(parts) == depth - 1:
            for child in children:
                try:
                    out.append(Digest.parse(f"{parts[0]}:{child}"))
                except DigestError:
                    continue
    return out


def link_content(digest: Digest) -> bytes:
    return str(digest).encode()
