"""Which kind of filesystem a path lives on, from ``/proc/self/mountinfo``.

The filesystem driver runs ``stat`` and small reads on the event loop (``inlinemetadata``), which
is safe only where a metadata call answers from the local kernel. On a network filesystem one
``stat`` can wait on a server for seconds, so ``inlinemetadata: auto`` (the default) keeps those
calls in threads when the storage root is on one of these.
"""

from __future__ import annotations

import os
import re

MOUNTINFO = "/proc/self/mountinfo"

# Network and cluster filesystems, and FUSE (sshfs, s3fs, gcsfuse, rclone, ...; ``fuseblk``, a
# FUSE driver over a local block device such as ntfs-3g, is local).
NETWORK = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "afs",
        "gpfs", "beegfs", "gfs2", "ocfs2", "davfs", "fuse", "virtiofs",
    }
)  # fmt: skip
_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_type(path: str, mountinfo: str | None = None) -> str | None:
    """The filesystem type of the mount holding ``path`` (the longest mount point above it; of
    two at one point, the later, which covers the earlier), or None if mountinfo is unreadable."""
    real = os.path.realpath(path)
    best, found = -1, None
    try:
        with open(mountinfo or MOUNTINFO, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if not sep or len(fields) < 5 or not rest:
            continue
        point = _unescape(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:
            best, found = len(point), rest[0]
    return found


def is_network(fstype: str | None) -> bool:
    return fstype is not None and (fstype in NETWORK or fstype.startswith("fuse."))
