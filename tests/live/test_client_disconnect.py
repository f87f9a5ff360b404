"""A client that hangs up in the middle of an upload body leaves no blob behind and a usable session."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

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

TOTAL = 10 * 1024 * 1024
REPO = "hangup/repo"


def access_entries(registry: LiveRegistry, method: str, path: str) -> list[dict[str, object]]:
    out = []
    for line in registry.log().splitlines():
        if line.startswith("{") and '"dockyard.access"' in line:
            entry = json.loads(line)
            if entry["method"] == method and entry["path"] == path:
                out.append(entry)
    return out


def wait_for_access(registry: LiveRegistry, method: str, path: str, count: int, timeout: float = 15) -> int:
    """Wait until the server has logged ``count`` requests ``method path`` (it finished them); last status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = access_entries(registry, method, path)
        if len(entries) >= count:
            return int(entries[-1]["status"])  # type: ignore[call-overload]
        time.sleep(0.05)
    raise AssertionError(f"the server never finished {method} {path}:\n{registry.log()[-3000:]}")


def hang_up(
    registry: LiveRegistry, method: str, target: str, declared: int, body: bytes, *, chunked: bool = False
) -> None:
    """Send headers declaring ``declared`` bytes (or a chunked body), then ``body`` (fewer bytes; in
    1 MiB chunks without the final empty chunk), then close the socket."""
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared}"
    with socket.create_connection(("127.0.0.1", registry.port), timeout=10) as sock:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {registry.host}\r\n"
            f"Content-Type: application/octet-stream\r\n{length}\r\n\r\n"
        )
        sock.sendall(head.encode())
        if chunked:
            for offset in range(0, len(body), 1 << 20):
                piece = body[offset : offset + (1 << 20)]
                sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        else:
            sock.sendall(body)
        time.sleep(0.3)  # let the server read what arrived before the connection goes away


def _existing_image(client: httpx.Client) -> tuple[bytes, str]:
    layer, config = det_bytes("kept-layer", 100_000), b'{"architecture":"amd64","os":"linux"}'
    push_blob(client, REPO, layer)
    push_blob(client, REPO, config)
    manifest = image_manifest(OCI_MANIFEST, config, [layer])
    push_manifest(client, REPO, "kept", manifest, OCI_MANIFEST)
    return manifest, digest_of(layer)


def _assert_repository_fine(client: httpx.Client, manifest: bytes, layer_digest: str) -> None:
    r = get_manifest(client, REPO, "kept")
    assert (r.status_code, r.content) == (200, manifest)
    r = client.get(f"/v2/{REPO}/blobs/{layer_digest}")
    assert r.status_code == 200 and digest_of(r.content) == layer_digest
    assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["kept"]


def _assert_blob_absent(client: httpx.Client, registry: LiveRegistry, digest: str) -> None:
    r = client.get(f"/v2/{REPO}/blobs/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    assert client.head(f"/v2/{REPO}/blobs/{digest}").status_code == 404
    assert not blob_path(registry.root, digest).exists()


@pytest.mark.parametrize(("method", "chunked"), [("PUT", False), ("PATCH", False), ("PATCH", True)])
def test_hang_up_mid_body_then_resume(live_registry: LiveRegistry, method: str, chunked: bool) -> None:
    data = det_bytes(f"hangup-{method}-{chunked}", TOTAL)
    digest = digest_of(data)
    with httpx.Client(base_url=live_registry.url, timeout=30) as client:
        manifest, layer_digest = _existing_image(client)
        location = start_upload(client, REPO)
        path = urlsplit(location).path
        target = path + f"?digest={digest}" if method == "PUT" else path
        hang_up(live_registry, method, target, TOTAL, data[: TOTAL // 2], chunked=chunked)
        status = wait_for_access(live_registry, method, path, 1)
        assert status == 499, status  # logged as a client hang-up, not as a completed upload

        _assert_blob_absent(client, live_registry, digest)
        _assert_repository_fine(client, manifest, layer_digest)

        # The session survives with a prefix of the body: resume from where it ends.
        r = client.get(location)
        assert r.status_code == 204, r.text
        kept = int(r.headers["range"].split("-")[1]) + 1 if r.headers["range"] != "0-0" else 0
        session_file = live_registry.root / "docker/registry/v2/repositories" / REPO / "_uploads"
        assert (session_file / path.rsplit("/", 1)[1] / "data").stat().st_size == kept
        assert 0 < kept <= TOTAL // 2, kept
        r = client.patch(
            location,
            content=data[kept:],
            headers={"Content-Range": f"{kept}-{TOTAL - 1}", "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{TOTAL - 1}"
        r = client.put(with_digest(r.headers["location"], digest))
        assert r.status_code == 201, r.text
        assert r.headers["docker-content-digest"] == digest
        r = client.get(f"/v2/{REPO}/blobs/{digest}")
        assert r.status_code == 200 and r.content == data
        _assert_repository_fine(client, manifest, layer_digest)
    assert "Traceback" not in live_registry.log()


def test_hang_up_on_single_request_upload_then_restart(live_registry: LiveRegistry) -> None:
    data = det_bytes("hangup-post", TOTAL)
    digest = digest_of(data)
    uploads = live_registry.root / "docker/registry/v2/repositories" / REPO / "_uploads"
    with httpx.Client(base_url=live_registry.url, timeout=30) as client:
        manifest, layer_digest = _existing_image(client)
        before = set(uploads.iterdir()) if uploads.exists() else set()
        path = f"/v2/{REPO}/blobs/uploads/"
        done = len(access_entries(live_registry, "POST", path))
        hang_up(live_registry, "POST", f"{path}?digest={digest}", TOTAL, data[: TOTAL // 2])
        assert wait_for_access(live_registry, "POST", path, done + 1) == 499

        _assert_blob_absent(client, live_registry, digest)
        _assert_repository_fine(client, manifest, layer_digest)
        after = set(uploads.iterdir()) if uploads.exists() else set()
        assert after == before, "the abandoned single-request session was not cleaned up"

        # Restart from scratch.
        assert push_blob(client, REPO, data, mode="single") == digest
        r = client.get(f"/v2/{REPO}/blobs/{digest}")
        assert r.status_code == 200 and r.content == data
    assert "Traceback" not in live_registry.log()
