"""Small local files replaced and read whole (``dockyard.smallfiles``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockyard import smallfiles


def test_replace_makes_the_directory_and_leaves_only_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "record"
    smallfiles.replace(str(path), b"one", 0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    smallfiles.replace(str(path), b"two")  # over the old content, whole: a new file
    assert smallfiles.read(str(path)) == b"two"
    assert os.listdir(path.parent) == ["record"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_read_takes_a_file_larger_than_one_read(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "big"
    smallfiles.replace(str(path), data)
    assert smallfiles.read(str(path)) == data
    (tmp_path / "exact").write_bytes(b"x" * (1 << 16))  # a full first read, then an empty one
    assert smallfiles.read(str(tmp_path / "exact")) == b"x" * (1 << 16)


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        smallfiles.read(str(tmp_path / "none"))
