"""Raw HTTP/1.1 over a socket, for requests no client library will send: broken chunked framing,
Content-Length lies, huge headers, bytes that trickle."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import httpx

from tests.servers.dockyard import LiveRegistry


@dataclass
class Reply:
    status: int | None  # None: the server closed (or never answered) without a status line
    head: bytes
    body: bytes
    closed: bool  # the server closed the connection


def connect(registry: LiveRegistry, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", registry.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_reply(sock: socket.socket) -> Reply:
    """Everything until the server closes, or one whole response (by Content-Length)."""
    data = b""
    closed = False
    try:
        while True:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = _content_length(head)
                if length is not None and len(rest) >= length:
                    break
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        closed = True
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
    return Reply(status, head, body, closed)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def exchange(registry: LiveRegistry, request: bytes, timeout: float = 10.0) -> Reply:
    with connect(registry, timeout) as sock:
        try:
            sock.sendall(request)
        except OSError:
            return Reply(None, b"", b"", True)
        return read_reply(sock)


def trickle(sock: socket.socket, data: bytes, pause: float, limit: float) -> float | None:
    """Send ``data`` a byte at a time; the seconds after which the server closed, or None."""
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        time.sleep(pause)
        if time.monotonic() - started > limit:
            return None
    return None


def upload_path(registry: LiveRegistry, name: str = "raw/repo") -> str:
    r = httpx.post(f"{registry.url}/v2/{name}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    return location if location.startswith("/") else "/" + location.split("/", 3)[3]
