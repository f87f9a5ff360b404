"""Finding the filesystem a storage root lives on (``storage.drivers.fstype``), and what
``inlinemetadata: auto`` makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.storage.drivers import create_driver, fstype
from dockyard.storage.drivers.filesystem import FilesystemDriver

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime - ext4 /dev/vda rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683652k
40 27 0:50 / {root} rw,relatime shared:7 - nfs4 server:/export rw,vers=4.2
41 40 0:51 / {root}/inner\\040dir rw,relatime - tmpfs tmpfs rw
42 27 0:52 / /srv/over rw - nfs server:/a rw
43 27 0:53 / /srv/over rw - ext4 /dev/vdb rw
44 27 0:54 / /mnt/sshfs rw - fuse.sshfs me@host:/ rw
45 27 0:55 / /mnt/ntfs rw - fuseblk /dev/sdb1 rw
garbage line
"""


def write(tmp_path: Path, root: str) -> str:
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO.format(root=root))
    return str(path)


def test_the_longest_mount_point_above_a_path_names_its_type(tmp_path: Path) -> None:
    info = write(tmp_path, "/srv/registry")
    assert fstype.mount_type("/srv/registry/docker/registry/v2", info) == "nfs4"
    assert fstype.mount_type("/srv/registry", info) == "nfs4"
    assert fstype.mount_type("/srv/registry/inner dir/x", info) == "tmpfs"  # \040 is a space
    assert fstype.mount_type("/srv/registryX", info) == "ext4"  # a sibling, not below it
    assert fstype.mount_type("/dev/shm/a", info) == "tmpfs"
    assert fstype.mount_type("/srv/over/x", info) == "ext4"  # the later mount covers the earlier
    assert fstype.mount_type("/srv", str(tmp_path / "missing")) is None


def test_network_filesystems() -> None:
    for kind in ("nfs", "nfs4", "cifs", "9p", "ceph", "glusterfs", "fuse.sshfs", "fuse.s3fs"):
        assert fstype.is_network(kind), kind
    local: tuple[str | None, ...] = ("ext4", "xfs", "btrfs", "tmpfs", "zfs", "overlay", "fuseblk", None)
    for other in local:
        assert not fstype.is_network(other), other


def test_auto_keeps_metadata_in_threads_on_a_network_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    assert create_driver("filesystem", {"rootdirectory": str(root)}).inner.inline_metadata  # type: ignore[attr-defined]
    monkeypatch.setattr(fstype, "MOUNTINFO", write(tmp_path, str(root.resolve())))
    assert not FilesystemDriver(str(root)).inline_metadata
    auto = create_driver("filesystem", {"rootdirectory": str(root), "inlinemetadata": "auto"})
    assert not auto.inner.inline_metadata  # type: ignore[attr-defined]
    forced = create_driver("filesystem", {"rootdirectory": str(root), "inlinemetadata": True})
    assert forced.inner.inline_metadata  # type: ignore[attr-defined]
