"""Storage running out of space: a clear 507, nothing partial, reads keep working, recovery without restart."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.regclient import (
    OCI_MANIFEST,
    blob_path,
    det_bytes,
    digest_of,
    error_codes,
    image_manifest,
    push_blob,
    push_manifest,
    stray_temp_files,
    with_digest,
)
from tests.servers.dockyard import LiveRegistry

REPO = "full/repo"
BLOB = 2 * 1024 * 1024


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 20 MiB tmpfs, unmounted afterwards."""
    mountpoint = tmp_path / "fs"
    mountpoint.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill_up(path: Path) -> int:
    """Write zeros to ``path`` until the file system is full; returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                written += f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return written


def try_push(client: httpx.Client, data: bytes) -> httpx.Response:
    """POST + monolithic PUT; returns the first response that is not a success."""
    r = client.post(f"/v2/{REPO}/blobs/uploads/")
    if r.status_code != 202:
        return r
    return client.put(with_digest(r.headers["location"], digest_of(data)), content=data)


def assert_storage_full(r: httpx.Response) -> None:
    assert r.status_code == 507, (r.status_code, r.text)
    body = r.json()
    assert [e["code"] for e in body["errors"]] == ["UNAVAILABLE"]
    assert "space" in body["errors"][0]["message"]
    assert r.headers["content-type"].startswith("application/json")


def test_disk_full_is_a_clear_error_and_recovers(small_fs: Path, tmp_path: Path) -> None:
    ballast = small_fs / "ballast.bin"  # beside the registry tree, on the same file system
    ballast.write_bytes(det_bytes("ballast", 6 * 1024 * 1024))
    root = small_fs / "registry"
    registry = LiveRegistry(tmp_path / "registry", root=root).start()
    try:
        with httpx.Client(base_url=registry.url, timeout=30) as client:
            config = b'{"architecture":"amd64","os":"linux"}'
            first = det_bytes("first", 100_000)
            push_blob(client, REPO, config)
            push_blob(client, REPO, first)
            early = image_manifest(OCI_MANIFEST, config, [first])
            push_manifest(client, REPO, "early", early, OCI_MANIFEST)
            pushed: list[bytes] = [first]
            failed: tuple[httpx.Response, bytes] | None = None
            for i in range(20):
                data = det_bytes(f"fill-{i}", BLOB)
                r = try_push(client, data)
                if r.status_code != 201:
                    failed = (r, data)
                    break
                pushed.append(data)
            assert failed is not None, "20 blobs of 2 MiB fitted in a 20 MiB file system"
            assert len(pushed) >= 4
            response, lost = failed
            print(
                f"push {len(pushed)} failed: {response.request.method} -> {response.status_code} {response.text}"
            )
            assert_storage_full(response)

            # Nothing partial is visible; earlier blobs still pull; the server is up.
            r = client.get(f"/v2/{REPO}/blobs/{digest_of(lost)}")
            assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
            assert not (blob_path(root, digest_of(lost)) / "data").exists()
            for data in pushed:
                r = client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
                assert r.status_code == 200 and r.content == data
            assert client.get("/v2/").status_code == 200
            assert registry.proc is not None and registry.proc.poll() is None

            # Completely full: small writes (a manifest, a new session) fail the same way.
            filler = small_fs / "filler.bin"
            fill_up(filler)
            assert_storage_full(client.post(f"/v2/{REPO}/blobs/uploads/"))
            full = image_manifest(OCI_MANIFEST, config, [pushed[1]])
            r = client.put(f"/v2/{REPO}/manifests/full", content=full, headers={"Content-Type": OCI_MANIFEST})
            assert_storage_full(r)
            assert client.get(f"/v2/{REPO}/manifests/{digest_of(full)}").status_code == 404
            # (an empty blobs/…/<hex>/ directory may remain: without its data file it holds no blob)
            assert not (blob_path(root, digest_of(full)) / "data").exists()
            assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["early"]
            r = client.get(f"/v2/{REPO}/manifests/early", headers={"Accept": OCI_MANIFEST})
            assert (r.status_code, r.content) == (200, early)

            # Free space (outside the registry tree): pushes work again without a restart.
            filler.unlink()
            ballast.unlink()
            # The failed session kept a prefix of the blob: finish it from there...
            session = str(response.request.url.copy_remove_param("digest"))
            r = client.get(session)
            assert r.status_code == 204, r.text
            kept = int(r.headers["range"].split("-")[1]) + 1
            assert 0 < kept < len(lost), kept
            r = client.patch(
                session, content=lost[kept:], headers={"Content-Range": f"{kept}-{len(lost) - 1}"}
            )
            assert r.status_code == 202, r.text
            r = client.put(with_digest(r.headers["location"], digest_of(lost)))
            assert (r.status_code, r.headers.get("docker-content-digest")) == (201, digest_of(lost)), r.text
            # ... and fresh pushes work too.
            assert push_blob(client, REPO, lost) == digest_of(lost)
            assert push_blob(client, REPO, det_bytes("after-full", BLOB), mode="chunked")
            r = client.get(f"/v2/{REPO}/blobs/{digest_of(lost)}")
            assert r.status_code == 200 and r.content == lost
            manifest = image_manifest(OCI_MANIFEST, config, [pushed[0], lost])
            push_manifest(client, REPO, "after", manifest, OCI_MANIFEST)
            assert (
                client.get(f"/v2/{REPO}/manifests/after", headers={"Accept": OCI_MANIFEST}).content
                == manifest
            )
        assert registry.proc is not None and registry.proc.poll() is None
        assert stray_temp_files(root) == []
    finally:
        registry.stop()
    log = registry.log()
    assert "storage full" in log
    assert "Traceback" not in log, log[-5000:]
