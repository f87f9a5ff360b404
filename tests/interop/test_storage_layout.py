"""Byte-compatibility of the storage layout with CNCF distribution 2.8.2, both ways.

Each test pushes the same deterministic content (every upload style, an OCI image manifest, a
Docker schema2 manifest, an OCI index with two children, pushes by tag and by digest, a moved tag,
a cross-repository mount) through one server's HTTP API, then serves the same root directory with
the other server and pulls everything back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.interop.distribution import DistributionRegistry
from tests.regclient import (
    V2,
    ImageSet,
    assert_pulled_intact,
    det_bytes,
    digest_of,
    interop_set,
    pull_set,
    push_set,
    start_upload,
    tree_dirs,
    tree_files,
    with_digest,
)
from tests.servers.dockyard import LiveRegistry


def _push_and_pull(url: str, images: ImageSet) -> dict[str, object]:
    with httpx.Client(base_url=url, timeout=30) as client:
        push_set(client, images)
        return pull_set(client, images)


def _pull(url: str, images: ImageSet) -> dict[str, object]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return pull_set(client, images)


def test_dockyard_storage_is_served_by_distribution(tmp_path: Path) -> None:
    images = interop_set()
    root = tmp_path / "shared-root"
    with LiveRegistry(tmp_path / "dockyard", root=root) as dockyard:
        from_dockyard = _push_and_pull(dockyard.url, images)
    assert_pulled_intact(from_dockyard, images)

    with DistributionRegistry(tmp_path / "distribution", root=root) as distribution:
        from_distribution = _pull(distribution.url, images)
        # distribution can also keep writing to the store dockyard made: move a tag back.
        with httpx.Client(base_url=distribution.url) as client:
            docker = next(m for m in images.manifests if m.reference == "v1-docker")
            r = client.put(
                "/v2/interop/app/manifests/moving",
                content=docker.body,
                headers={"Content-Type": docker.media_type},
            )
            assert r.status_code == 201, r.text
    assert_pulled_intact(from_distribution, images)
    assert from_distribution == from_dockyard  # bytes, digests, Content-Type, tags, catalog

    with (
        LiveRegistry(tmp_path / "dockyard-again", root=root) as dockyard,
        httpx.Client(base_url=dockyard.url) as c,
    ):
        r = c.get("/v2/interop/app/manifests/moving", headers={"Accept": docker.media_type})
        assert (r.status_code, r.content, r.headers["docker-content-digest"]) == (
            200,
            docker.body,
            docker.digest,
        )


def test_distribution_storage_is_served_by_dockyard(tmp_path: Path) -> None:
    images = interop_set()
    root = tmp_path / "shared-root"
    with DistributionRegistry(tmp_path / "distribution", root=root) as distribution:
        from_distribution = _push_and_pull(distribution.url, images)
    assert_pulled_intact(from_distribution, images)

    with LiveRegistry(tmp_path / "dockyard", root=root) as dockyard:
        from_dockyard = _pull(dockyard.url, images)
    assert_pulled_intact(from_dockyard, images)
    assert from_dockyard == from_distribution


DOCKYARD_OWN = "_dockyard"


def _blob_contents_match_their_paths(root: Path) -> int:
    count = 0
    for data in (root / V2 / "blobs").rglob("data"):
        assert hashlib.sha256(data.read_bytes()).hexdigest() == data.parent.name, data
        count += 1
    return count


def test_same_pushes_make_the_same_file_tree(tmp_path: Path) -> None:
    images = interop_set()
    dockyard_root, distribution_root = tmp_path / "dockyard-root", tmp_path / "distribution-root"
    with LiveRegistry(tmp_path / "dockyard", root=dockyard_root) as dockyard:
        _push_and_pull(dockyard.url, images)
    with DistributionRegistry(tmp_path / "distribution", root=distribution_root) as distribution:
        _push_and_pull(distribution.url, images)

    ours, theirs = tree_files(dockyard_root), tree_files(distribution_root)
    # dockyard keeps its own state (catalog generation) in one top-level directory that
    # distribution never reads (storage/paths.py); everything else must match.
    ours = {p: v for p, v in ours.items() if not p.startswith(f"{DOCKYARD_OWN}/")}
    only_ours, only_theirs = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    assert (only_ours, only_theirs) == ([], []), "file paths differ"
    differing = {path: (ours[path], theirs[path]) for path in ours if ours[path] != theirs[path]}
    assert differing == {}, "link contents or blob sizes differ"
    links = [p for p in ours if p.endswith("/link")]
    assert len(links) >= 20 and all(ours[p].startswith(b"sha256:") for p in links)  # type: ignore[union-attr]
    assert not any(ours[p].endswith(b"\n") for p in links)  # type: ignore[union-attr]
    our_dirs = {d for d in tree_dirs(dockyard_root) if d.split("/")[0] != DOCKYARD_OWN}
    assert our_dirs == tree_dirs(distribution_root)
    expected_blobs = len({b.digest for b in images.blobs} | {m.digest for m in images.manifests})
    assert _blob_contents_match_their_paths(dockyard_root) == expected_blobs
    assert _blob_contents_match_their_paths(distribution_root) == expected_blobs


def test_upload_started_on_distribution_is_finished_by_dockyard(tmp_path: Path) -> None:
    """A rolling switch-over: an upload session distribution began (its _uploads/<uuid>/data,
    startedat and hashstates) continues on dockyard over the same storage root."""
    root = tmp_path / "shared-root"
    data = det_bytes("switch-over", 3 * 1024 * 1024 + 5)
    half = len(data) // 2
    with DistributionRegistry(tmp_path / "distribution", root=root) as distribution:
        client = httpx.Client(base_url=distribution.url)
        location = start_upload(client, "switch/repo")
        r = client.patch(location, content=data[:half], headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{half - 1}"
        client.close()
    path = urlsplit(location).path  # dockyard needs no _state token: the session lives in storage
    with (
        LiveRegistry(tmp_path / "dockyard", root=root) as dockyard,
        httpx.Client(base_url=dockyard.url) as client,
    ):
        r = client.get(path)
        assert (r.status_code, r.headers.get("range")) == (204, f"0-{half - 1}"), r.text
        r = client.patch(path, content=data[half:], headers={"Content-Range": f"{half}-{len(data) - 1}"})
        assert r.status_code == 202, r.text
        r = client.put(with_digest(r.headers["location"], digest_of(data)))
        assert (r.status_code, r.headers.get("docker-content-digest")) == (201, digest_of(data)), r.text
        assert client.get(f"/v2/switch/repo/blobs/{digest_of(data)}").content == data
    uploads = root / V2 / "repositories/switch/repo/_uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    with DistributionRegistry(tmp_path / "distribution-2", root=root) as distribution:
        r = httpx.get(f"{distribution.url}/v2/switch/repo/blobs/{digest_of(data)}")
        assert (r.status_code, r.content) == (200, data)
