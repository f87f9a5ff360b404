"""SIGKILL of the whole server (main process and workers) in the middle of an upload."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.live.livetools import live_members
from tests.regclient import (
    OCI_MANIFEST,
    blob_path,
    det_bytes,
    digest_of,
    error_codes,
    get_manifest,
    image_manifest,
    push_blob,
    push_manifest,
    start_upload,
    with_digest,
)
from tests.servers.dockyard import LiveRegistry

REPO = "crash/repo"
TOTAL = 16 * 1024 * 1024


def _slow_put(port: int, target: str, data: bytes, errors: list[BaseException]) -> None:
    """A monolithic PUT whose body trickles in 256 KiB pieces (about 3 s in all)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            )
            for offset in range(0, len(data), 256 * 1024):
                sock.sendall(data[offset : offset + 256 * 1024])
                time.sleep(0.05)
    except OSError as exc:  # the server dies under us: expected
        errors.append(exc)


def test_sigkill_mid_upload_then_restart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layer, config = det_bytes("crash-layer", 300_000), b'{"architecture":"arm64","os":"linux"}'
    manifest = image_manifest(OCI_MANIFEST, config, [layer])
    data = det_bytes("crash-upload", TOTAL)
    digest = digest_of(data)

    first = LiveRegistry(tmp_path / "first", root=root).start()
    try:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            push_blob(client, REPO, layer, mode="chunked")
            push_blob(client, REPO, config)
            push_manifest(client, REPO, "before-crash", manifest, OCI_MANIFEST)
            location = start_upload(client, REPO)
        upload_id = urlsplit(location).path.rsplit("/", 1)[1]
        session_data = root / "docker/registry/v2/repositories" / REPO / "_uploads" / upload_id / "data"
        errors: list[BaseException] = []
        sender = threading.Thread(
            target=_slow_put, args=(first.port, f"{urlsplit(location).path}?digest={digest}", data, errors)
        )
        sender.start()
        deadline = time.monotonic() + 20
        while session_data.stat().st_size < 2 * 1024 * 1024:  # the server is writing the body now
            assert time.monotonic() < deadline, "the upload never reached the disk"
            time.sleep(0.02)
        group = first.proc.pid if first.proc else 0
        first.stop(signal.SIGKILL)
        assert session_data.stat().st_size < TOTAL
    finally:
        first.stop()
        sender.join(30)
    assert not sender.is_alive()
    deadline = time.monotonic() + 5
    while live_members(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_members(group) == {}, "processes of the killed server's group are still running"

    with LiveRegistry(tmp_path / "second", root=root) as second, httpx.Client(base_url=second.url) as client:
        r = client.get(f"/v2/{REPO}/blobs/{digest}")
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
        assert not blob_path(root, digest).exists()

        r = get_manifest(client, REPO, "before-crash")
        assert (r.status_code, r.content, r.headers["content-type"]) == (200, manifest, OCI_MANIFEST)
        for blob in (layer, config):
            r = client.get(f"/v2/{REPO}/blobs/{digest_of(blob)}")
            assert (r.status_code, r.content) == (200, blob)
        assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["before-crash"]

        # A new push of the same blob succeeds.
        assert push_blob(client, REPO, data) == digest
        r = client.get(f"/v2/{REPO}/blobs/{digest}")
        assert r.status_code == 200 and r.content == data

        # The interrupted session survived the crash with a prefix of the body: it can be finished
        # (the digest is recomputed from the stored bytes) or abandoned.
        session = location.replace(first.url, second.url)
        r = client.get(session)
        assert r.status_code == 204, r.text
        kept = int(r.headers["range"].split("-")[1]) + 1
        assert kept == session_data.stat().st_size and 0 < kept < TOTAL
        r = client.patch(session, content=data[kept:], headers={"Content-Range": f"{kept}-{TOTAL - 1}"})
        assert r.status_code == 202, r.text
        r = client.put(with_digest(r.headers["location"], digest))
        assert (r.status_code, r.headers.get("docker-content-digest")) == (201, digest), r.text
        assert client.delete(session).status_code == 404  # finished sessions are gone
    assert "Traceback" not in second.log()
