"""``http.accel``: what the configuration accepts, and which files the redirect may name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dockyard.api.accel import accel_target
from dockyard.config import ConfigError, parse_config


def _config(root: Path, accel: dict[str, Any] | None, **storage: Any) -> Any:
    tree: dict[str, Any] = {
        "version": 0.1,
        "storage": storage or {"filesystem": {"rootdirectory": str(root)}},
    }
    if accel is not None:
        tree["http"] = {"accel": accel}
    return parse_config(tree)


def test_off_by_default_and_location_default(tmp_path: Path) -> None:
    assert _config(tmp_path, None).http.accel is None
    assert _config(tmp_path, {"kind": "nginx"}).http.accel.location == "/_dockyard_blobs/"


@pytest.mark.parametrize(
    "accel",
    [
        {"kind": "apache"},
        {"kind": "nginx", "location": "_blobs/"},
        {"kind": "nginx", "location": "/_blobs"},
        {"kind": "nginx", "location": "/a b/"},
        {"kind": "nginx", "location": "/../etc/"},
        {"kind": "nginx", "location": "/x/./y/"},
        {"kind": "nginx", "location": "/"},
        {"kind": "nginx", "location": "/x/", "other": 1},
    ],
)
def test_bad_values_are_refused(tmp_path: Path, accel: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="accel"):
        _config(tmp_path, accel)


def test_needs_the_filesystem_driver(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="filesystem driver"):
        _config(tmp_path, {"kind": "nginx"}, inmemory={})
    assert _config(tmp_path, {"kind": "nginx"}, delete={"enabled": True}).http.accel is not None


def test_target_names_files_under_the_root_only(tmp_path: Path) -> None:
    config = _config(tmp_path, {"kind": "nginx", "location": "/blobs/"})
    root = os.path.abspath(tmp_path)
    blob = f"{root}/docker/registry/v2/blobs/sha256/ab/{'ab' * 32}/data"
    assert accel_target(config, blob) == f"/blobs/docker/registry/v2/blobs/sha256/ab/{'ab' * 32}/data"
    assert accel_target(config, "/elsewhere/data") is None
    assert accel_target(config, root + "-other/data") is None
    assert accel_target(config, f"{root}/a b/data") is None
    assert accel_target(config, f"{root}/x/../../data") is None
    assert accel_target(_config(tmp_path, None), blob) is None
