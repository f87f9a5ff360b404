"""dockyard and distribution 2.8.2 on one S3 bucket, both ways, on SeaweedFS and on Ceph RGW.

The filesystem interop tests (tests/interop/test_storage_layout.py) pushed through one server and
pulled through the other over one root directory; here the shared store is a bucket and a
``rootdirectory`` in it, both servers configured with distribution's ``storage.s3`` keys. Also a
real client (skopeo) pushes to and pulls from dockyard on S3.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.distribution import DistributionRegistry
from tests.interop.test_skopeo_round_trip import copy, skopeo, skopeo_env
from tests.regclient import (
    OCI_INDEX,
    OCI_MANIFEST,
    ImageSet,
    _config,
    assert_pulled_intact,
    det_bytes,
    image_manifest,
    interop_set,
    layout_blobs,
    pull_set,
    push_set,
    sample_image,
    targz,
    write_oci_layout,
)
from tests.servers.dockyard import LiveRegistry
from tests.servers.s3 import S3Engine

pytestmark = [pytest.mark.live, pytest.mark.interop]


@pytest.fixture(params=["seaweedfs", "ceph_rgw"])
def engine(request: pytest.FixtureRequest) -> S3Engine:
    engine: S3Engine = request.getfixturevalue(request.param)
    return engine


def _s3_section(engine: S3Engine, root: str) -> dict[str, Any]:
    return {
        "accesskey": engine.access_key,
        "secretkey": engine.secret_key,
        "region": "us-east-1",
        "regionendpoint": engine.url,
        "bucket": engine.shared,
        "rootdirectory": root,
        "secure": False,
        "v4auth": True,
    }


def dockyard_on_s3(workdir: Path, engine: S3Engine, root: str) -> LiveRegistry:
    """One worker: without ``database.dsn`` an S3 store gets the in-memory coordinator, whose
    upload locks are each worker's own, so two workers could write one session at once."""
    registry = LiveRegistry(workdir, workers=1)
    registry.config["storage"] = {
        "s3": _s3_section(engine, root),
        "delete": {"enabled": True},
        "redirect": {"disable": True},  # as distribution_on_s3: both stream, the bytes compared
    }
    return registry


def distribution_on_s3(workdir: Path, engine: S3Engine, root: str) -> DistributionRegistry:
    registry = DistributionRegistry(workdir)
    registry.config["storage"] = {
        "s3": _s3_section(engine, root),
        "delete": {"enabled": True},
        "maintenance": {"uploadpurging": {"enabled": False}},
        "redirect": {"disable": True},
    }
    # Its AWS SDK panics at start on these machines' AWS_CA_BUNDLE (LoadCustomCABundleError).
    registry.env["AWS_CA_BUNDLE"] = ""
    return registry


def _push_and_pull(url: str, images: ImageSet) -> dict[str, object]:
    with httpx.Client(base_url=url, timeout=60) as client:
        push_set(client, images)
        return pull_set(client, images)


def _pull(url: str, images: ImageSet) -> dict[str, object]:
    with httpx.Client(base_url=url, timeout=60) as client:
        return pull_set(client, images)


def test_dockyard_on_s3_is_served_by_distribution(tmp_path: Path, engine: S3Engine) -> None:
    images, root = interop_set(), engine.root("dockyard-first")
    with dockyard_on_s3(tmp_path / "dockyard", engine, root) as dockyard:
        from_dockyard = _push_and_pull(dockyard.url, images)
    assert_pulled_intact(from_dockyard, images)
    with distribution_on_s3(tmp_path / "distribution", engine, root) as distribution:
        from_distribution = _pull(distribution.url, images)
    assert_pulled_intact(from_distribution, images)
    assert from_distribution == from_dockyard  # bytes, digests, Content-Type, tags, catalog


def test_distribution_on_s3_is_served_by_dockyard(tmp_path: Path, engine: S3Engine) -> None:
    images, root = interop_set(), engine.root("distribution-first")
    with distribution_on_s3(tmp_path / "distribution", engine, root) as distribution:
        from_distribution = _push_and_pull(distribution.url, images)
    assert_pulled_intact(from_distribution, images)
    with dockyard_on_s3(tmp_path / "dockyard", engine, root) as dockyard:
        from_dockyard = _pull(dockyard.url, images)
    assert_pulled_intact(from_dockyard, images)
    assert from_dockyard == from_distribution


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_pushes_and_pulls_through_dockyard_on_s3(tmp_path: Path, seaweedfs: S3Engine) -> None:
    """A multi-arch image and one with a 24 MiB layer (three 10 MiB parts) go in and come back
    out byte for byte."""
    env = skopeo_env(tmp_path / "skopeo")
    img = sample_image("s3")
    big_layer = targz({"big.bin": det_bytes("s3-big", 24 << 20)})
    big_config = _config("amd64", [big_layer])
    big = image_manifest(OCI_MANIFEST, big_config, [big_layer])
    contents = [*img.layers, img.config_amd64, img.config_arm64, img.oci_amd64, img.oci_arm64, img.index]
    contents += [big_layer, big_config, big]
    src = write_oci_layout(
        tmp_path / "src", contents, {"multi": (img.index, OCI_INDEX), "big": (big, OCI_MANIFEST)}
    )
    out = tmp_path / "out"
    with dockyard_on_s3(tmp_path / "dockyard", seaweedfs, seaweedfs.root("skopeo")) as dockyard:
        copy(env, f"oci:{src}:multi", f"docker://{dockyard.host}/s3/app:multi", all_images=True)
        copy(env, f"oci:{src}:big", f"docker://{dockyard.host}/s3/app:big")
        copy(env, f"docker://{dockyard.host}/s3/app:multi", f"oci:{out}:multi", all_images=True)
        copy(env, f"docker://{dockyard.host}/s3/app:big", f"oci:{out}:big")
        listed = json.loads(
            skopeo(env, "list-tags", "--tls-verify=false", f"docker://{dockyard.host}/s3/app")
        )
    assert sorted(listed["Tags"]) == ["big", "multi"]
    assert layout_blobs(out) == layout_blobs(src)  # every layer, config and manifest, byte for byte
