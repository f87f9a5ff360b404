"""``dockyard migrate``: a registry copied filesystem -> SeaweedFS (interrupted in the middle of a
blob, then resumed) -> filesystem, and the result served by distribution 2.8.2 to skopeo and to a
plain HTTP client with every digest as pushed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from dockyard.cli.main import main
from dockyard.cli.migrate import storage_of
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.drivers import create_driver
from dockyard.storage.migrate import TEMPORARIES, Migration
from tests.interop.distribution import DistributionRegistry
from tests.interop.test_skopeo_round_trip import SKOPEO, skopeo, skopeo_env
from tests.regclient import assert_pulled_intact, digest_of, interop_set, pull_set, push_blob, push_set
from tests.servers.dockyard import LiveRegistry
from tests.servers.s3 import S3Engine

MiB = 1 << 20


class Interrupted(Exception):
    """What a Ctrl-C or a crash is to the copy: it stops wherever it is."""


def _s3_spec(engine: S3Engine, root: str) -> str:
    query = {
        "regionendpoint": engine.url,
        "region": "us-east-1",
        "accesskey": engine.access_key,
        "secretkey": engine.secret_key,
        "secure": "false",
        "chunksize": str(5 * MiB),
    }
    return f"s3://{engine.shared}{root}?{urlencode(query)}"


def _migrate(capsys: pytest.CaptureFixture[str], src: str, dst: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(["migrate", src, dst, "--json"]) == 0, capsys.readouterr().err
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


def test_filesystem_to_s3_interrupted_resumed_to_s3_to_filesystem_served_by_distribution(
    tmp_path: Path, seaweedfs: S3Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    source, back = tmp_path / "source", tmp_path / "back"
    images = interop_set()
    big = os.urandom(6 * MiB)  # parts of a multipart upload on S3; the copy stops inside it
    with (
        LiveRegistry(tmp_path / "dockyard", root=source, workers=1) as dockyard,
        httpx.Client(base_url=dockyard.url, timeout=60) as client,
    ):
        push_set(client, images)
        push_blob(client, "interop/app", big)
    s3 = _s3_spec(seaweedfs, seaweedfs.root("migrated"))

    # 1. Interrupted 3 MiB into the big blob (one blob at a time, in digest order; the others
    # together are smaller than 1 MiB, so the copy always stops inside the big one).
    blobs = sorted(str(p.parent.name) for p in (source / "docker/registry/v2/blobs").rglob("data"))
    before_big = blobs.index(_digest(big).hex)

    async def interrupted() -> tuple[bool, bool, bool]:
        src, dst = (create_driver(*storage_of(spec)) for spec in (f"filesystem:{source}", s3))

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "blobs" and done >= 3 * MiB:  # bytes copied so far
                raise Interrupted

        with pytest.raises(Interrupted):
            await Migration(src, dst, jobs=1, progress=progress).run()
        # Nothing half-copied is visible, and no link or tag exists before every blob is there.
        return (
            await dst.exists(paths.blob_data(_digest(big))),
            await dst.exists(paths.REPOSITORIES),
            await dst.exists(TEMPORARIES),
        )

    big_there, repositories_there, _ = asyncio.run(interrupted())
    assert (big_there, repositories_there) == (False, False)

    # 2. Resumed through the command: what was copied is skipped, the rest copied and verified.
    resumed = _migrate(capsys, f"filesystem:{source}", s3)
    assert resumed["failed"] == [] and resumed["blobs"] == len(blobs)
    assert (resumed["blobsPresent"], resumed["blobsCopied"]) == (before_big, len(blobs) - before_big)
    again = _migrate(capsys, f"filesystem:{source}", s3)
    assert (again["blobsCopied"], again["filesCopied"], again["blobsPresent"]) == (0, 0, len(blobs))

    # 3. Into another root on the object store (S3 to S3), then back to a filesystem, which
    # distribution 2.8.2 serves.
    s3_again = _s3_spec(seaweedfs, seaweedfs.root("moved"))
    moved = _migrate(capsys, s3, s3_again)
    assert moved["failed"] == [] and moved["blobsCopied"] == len(blobs) and moved["tags"] == 5
    home = _migrate(capsys, s3_again, f"filesystem:{back}")
    assert home["failed"] == [] and home["blobsCopied"] == len(blobs) and home["tags"] == 5
    assert not (back / "docker/registry/v2/_dockyard/migrate").exists()
    with DistributionRegistry(tmp_path / "distribution", root=back) as distribution:
        with httpx.Client(base_url=distribution.url, timeout=30) as client:
            assert_pulled_intact(pull_set(client, images), images)
            r = client.get(f"/v2/interop/app/blobs/{_digest(big)}")
            assert r.status_code == 200 and r.content == big
        if SKOPEO is not None:
            env = skopeo_env(tmp_path / "skopeo")
            ref = f"docker://{distribution.host}/interop/app:v1-oci"
            out = skopeo(env, "inspect", "--raw", "--tls-verify=false", ref)
            pushed = next(m for m in images.manifests if m.reference == "v1-oci")
            assert digest_of(out.encode()) == digest_of(pushed.body)
            layout = tmp_path / "pulled"
            skopeo(env, "copy", "--src-tls-verify=false", ref, f"oci:{layout}:v1-oci")
            index = json.loads((layout / "index.json").read_text())
            assert index["manifests"][0]["digest"] == digest_of(pushed.body)


def _digest(data: bytes) -> Digest:
    return Digest.of(data)
