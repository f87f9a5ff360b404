"""HTTPS: certificate and key from the config file or from REGISTRY_HTTP_TLS_* variables."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest

from tests.live.livetools import TLSFiles
from tests.regclient import det_bytes, digest_of, push_blob
from tests.servers.dockyard import LiveRegistry


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _registry(tmp_path: Path, tls: TLSFiles, via: str) -> LiveRegistry:
    if via == "config":
        config = {"http": {"tls": {"certificate": str(tls.certificate), "key": str(tls.key)}}}
        return LiveRegistry(tmp_path / "registry", config=config)
    registry = LiveRegistry(
        tmp_path / "registry",
        env={"REGISTRY_HTTP_TLS_CERTIFICATE": str(tls.certificate), "REGISTRY_HTTP_TLS_KEY": str(tls.key)},
    )
    registry.tls = True  # the config file has no tls section: only the environment turns HTTPS on
    return registry


def _plain_http_exchange(host: str, port: int, limit: float) -> tuple[bytes, str, float]:
    """Speak plain HTTP to the port; returns (bytes received, how it ended, seconds taken)."""
    started = time.monotonic()
    ended = "eof"
    received = b""
    with socket.create_connection((host, port), timeout=limit) as sock:
        sock.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            ended = "timeout"
        except ConnectionResetError:
            ended = "reset"
    return received, ended, time.monotonic() - started


@pytest.mark.parametrize("via", ["config", "env"])
def test_https_push_pull_and_plain_http_refused(tmp_path: Path, tls_files: TLSFiles, via: str) -> None:
    registry = _registry(tmp_path, tls_files, via)
    trusted = _trusting(tls_files.ca)
    registry.start(verify=trusted)
    try:
        assert registry.url.startswith("https://")
        data = det_bytes(f"tls-{via}", 3 * 1024 * 1024 + 17)
        with httpx.Client(base_url=registry.url, verify=trusted, timeout=30) as client:
            assert client.get("/v2/").status_code == 200
            digest = push_blob(client, "secure/repo", data, mode="chunked")
            r = client.get(f"/v2/secure/repo/blobs/{digest}")
            assert r.status_code == 200
            assert r.content == data and digest_of(r.content) == digest

        # A client that does not trust the signing CA refuses the server certificate.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{registry.url}/v2/", verify=_trusting(tls_files.other_ca), timeout=10)

        # Plain HTTP to the TLS port fails clearly and quickly: an error or a 400, never a hang.
        received, ended, took = _plain_http_exchange("127.0.0.1", registry.port, limit=10)
        assert ended != "timeout" and took < 5, (ended, took, received[:200])
        tls_alert = received[:1] == b"\x15" and len(received) == 7  # a fatal TLS alert record, then close
        assert received == b"" or tls_alert or received.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")), (
            received
        )
        started = time.monotonic()
        try:
            status: int | str = httpx.get(f"http://{registry.host}/v2/", timeout=10).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        assert status != 200 and time.monotonic() - started < 5, status
        assert status == 400 or isinstance(status, str)
        print(
            f"plain HTTP to the TLS port: raw socket got {received!r} ({ended}, {took:.3f}s); httpx: {status}"
        )

        # ... and the server is still serving HTTPS afterwards.
        assert httpx.get(f"{registry.url}/v2/", verify=trusted, timeout=10).status_code == 200
    finally:
        registry.stop()
    log = registry.log()
    assert '"tls": true' in log
    assert "Traceback" not in log, log
