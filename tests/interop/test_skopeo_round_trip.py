"""A real client round trip over one storage root: skopeo pushes to dockyard, distribution serves and
copies that root, dockyard serves the result back to skopeo byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.interop.distribution import DistributionRegistry
from tests.regclient import (
    OCI_INDEX,
    OCI_MANIFEST,
    catalog,
    digest_of,
    layout_blobs,
    sample_image,
    write_oci_layout,
)
from tests.servers.dockyard import LiveRegistry

SKOPEO = shutil.which("skopeo")
pytestmark = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")


def skopeo_env(state: Path) -> dict[str, str]:
    """Private containers/image configuration and state (clients.md pitfall 5)."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "tmp").mkdir(exist_ok=True)
    (state / "registries.conf").write_text(
        'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
    )
    (state / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{state}/graph"\nrunroot = "{state}/run"\n'
    )
    (state / "containers.conf").write_text(
        f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "{state}/tmp"\n'
        'lock_type = "file"\n'
    )
    (state / "auth.json").write_text('{"auths": {}}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "CONTAINERS_"))}
    env.update(
        CONTAINERS_REGISTRIES_CONF=str(state / "registries.conf"),
        CONTAINERS_STORAGE_CONF=str(state / "storage.conf"),
        CONTAINERS_CONF=str(state / "containers.conf"),
        REGISTRY_AUTH_FILE=str(state / "auth.json"),
        TMPDIR=str(state / "tmp"),
        HOME=str(state),
    )
    return env


def skopeo(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [SKOPEO or "skopeo", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"skopeo {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def copy(env: dict[str, str], src: str, dst: str, *, all_images: bool = False) -> None:
    extra = ["--all"] if all_images else []
    skopeo(
        env,
        "copy",
        "--preserve-digests",
        *extra,
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        src,
        dst,
    )


def test_skopeo_dockyard_to_distribution_to_dockyard(tmp_path: Path) -> None:
    env = skopeo_env(tmp_path / "skopeo")
    img = sample_image("skopeo")
    contents = [
        *img.layers,
        img.config_amd64,
        img.config_arm64,
        img.oci_amd64,
        img.oci_arm64,
        img.index,
    ]
    src = write_oci_layout(
        tmp_path / "src", contents, {"multi": (img.index, OCI_INDEX), "single": (img.oci_amd64, OCI_MANIFEST)}
    )
    root = tmp_path / "root"

    with LiveRegistry(tmp_path / "dockyard-1", root=root) as dockyard:
        copy(env, f"oci:{src}:multi", f"docker://{dockyard.host}/rt/src:multi", all_images=True)
        copy(env, f"oci:{src}:single", f"docker://{dockyard.host}/rt/src:single")

    with DistributionRegistry(tmp_path / "distribution", root=root) as distribution:
        raw = skopeo(
            env, "inspect", "--raw", "--tls-verify=false", f"docker://{distribution.host}/rt/src:multi"
        )
        assert raw.encode() == img.index
        for tag, all_images in (("multi", True), ("single", False)):
            copy(
                env,
                f"docker://{distribution.host}/rt/src:{tag}",
                f"docker://{distribution.host}/rt/copy:{tag}",
                all_images=all_images,
            )
        listed = json.loads(
            skopeo(env, "list-tags", "--tls-verify=false", f"docker://{distribution.host}/rt/copy")
        )
        assert sorted(listed["Tags"]) == ["multi", "single"]

    out = tmp_path / "out"
    with LiveRegistry(tmp_path / "dockyard-2", root=root) as dockyard:
        copy(env, f"docker://{dockyard.host}/rt/copy:multi", f"oci:{out}:multi", all_images=True)
        copy(env, f"docker://{dockyard.host}/rt/copy:single", f"oci:{out}:single")
        raw = skopeo(
            env, "inspect", "--raw", "--tls-verify=false", f"docker://{dockyard.host}/rt/copy:single"
        )
        assert raw.encode() == img.oci_amd64
        with httpx.Client(base_url=dockyard.url) as client:
            assert catalog(client) == ["rt/copy", "rt/src"]

    assert layout_blobs(out) == layout_blobs(src)  # every layer, config and manifest, byte for byte
    refs = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in json.loads((out / "index.json").read_text())["manifests"]
    }
    assert refs == {"multi": digest_of(img.index), "single": digest_of(img.oci_amd64)}
