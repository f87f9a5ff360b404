"""Minimal HTTP/1.1 clients (keep-alive) that add as little client CPU as possible.

Blob bodies are sent from the pre-generated files with ``sendfile`` (zero copy, nothing hashed
here); response bodies can be discarded into a reused buffer. The async client drives the
many-small-requests image push.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import urlsplit

_SINK = bytearray(1 << 20)


class HTTPFailure(RuntimeError):
    """A request got an unexpected status, or the connection broke."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def expect(self, *statuses: int, what: str = "") -> Response:
        if self.status not in statuses:
            detail = self.body[:300].decode(errors="replace")
            raise HTTPFailure(f"{what}: HTTP {self.status} (expected {statuses}) {detail}")
        return self


def parse_head(lines: list[bytes]) -> tuple[int, dict[str, str]]:
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HTTPFailure(f"bad status line {status_line!r}")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            continue
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


def has_body(method: str, status: int) -> bool:
    return not (method == "HEAD" or status in (204, 304) or 100 <= status < 200)


def build_request(method: str, target: str, host: str, headers: dict[str, str] | None, length: int) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def path_of(location: str) -> str:
    """A Location header (absolute or relative) as a request target."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def with_digest(location: str, digest: str) -> str:
    target = path_of(location)
    return f"{target}{'&' if '?' in target else '?'}digest={digest}"


class Connection:
    """One keep-alive connection to ``127.0.0.1:port``; reconnects when the server closes.

    With ``cafile`` it speaks TLS and trusts only that certificate; bodies then go through
    ``SSLSocket.sendfile``, which encrypts in user space (as every TLS client without kTLS does)."""

    def __init__(
        self, port: int, host: str = "127.0.0.1", timeout: float = 300.0, cafile: Path | None = None
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._tls = ssl.create_default_context(cafile=str(cafile)) if cafile else None
        self._sock: socket.socket | None = None
        self._rfile: BinaryIO | None = None

    def close(self) -> None:
        if self._rfile is not None:
            self._rfile.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._rfile = None

    def local_port(self) -> int:
        """The client side's port of the open connection (``bench.workers`` traces it)."""
        if self._sock is None:
            raise HTTPFailure("not connected")
        return int(self._sock.getsockname()[1])

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> tuple[socket.socket, BinaryIO]:
        if self._sock is None or self._rfile is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            rfile = cast(BinaryIO, sock.makefile("rb", buffering=1 << 16))
            self._sock, self._rfile = sock, rfile
            return sock, rfile
        return self._sock, self._rfile

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        file: tuple[BinaryIO, int, int] | None = None,
        discard: bool = False,
    ) -> Response:
        """Send one request; ``file`` is (open file, offset, count) sent with sendfile."""
        sock, rfile = self._open()
        length = len(body) if body is not None else (file[2] if file else 0)
        head = build_request(method, target, f"{self.host}:{self.port}", headers, length)
        try:
            if body is not None and len(body) <= 1 << 16:
                sock.sendall(head + body)
            else:
                sock.sendall(head)
                if body is not None:
                    sock.sendall(body)
                if file is not None:
                    sent = sock.sendfile(file[0], file[1], file[2])
                    if sent != file[2]:
                        raise HTTPFailure(f"sendfile sent {sent} of {file[2]} bytes")
            lines = [rfile.readline(65536)]
            if not lines[0]:
                raise HTTPFailure("connection closed before the response")
            while lines[-1] not in (b"\r\n", b"\n", b""):
                lines.append(rfile.readline(65536))
            status, hdrs = parse_head(lines)
            data = self._body(rfile, method, status, hdrs, discard)
        except (OSError, ValueError) as exc:
            self.close()
            raise HTTPFailure(f"{method} {target}: {exc}") from exc
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return Response(status, hdrs, data)

    def _body(self, rfile: BinaryIO, method: str, status: int, hdrs: dict[str, str], discard: bool) -> bytes:
        if not has_body(method, status):
            return b""
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                size = int(rfile.readline(1024).split(b";")[0], 16)
                if size == 0:
                    while rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                chunk = rfile.read(size)
                if not discard:
                    out += chunk
                rfile.read(2)
        if "content-length" in hdrs:
            remaining = int(hdrs["content-length"])
            if not discard:
                data = rfile.read(remaining)
                if len(data) != remaining:
                    raise HTTPFailure("short body")
                return data
            view = memoryview(_SINK)
            while remaining:
                n = rfile.readinto(view[: min(remaining, len(view))])  # type: ignore[attr-defined]
                if not n:
                    raise HTTPFailure("short body")
                remaining -= n
            return b""
        data = rfile.read()
        self.close()
        return b"" if discard else data


class AsyncConnection:
    """The asyncio twin of :class:`Connection` for small bodies."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Response:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader, writer = self._reader, self._writer
        length = len(body) if body is not None else 0
        try:
            writer.write(build_request(method, target, f"{self.host}:{self.port}", headers, length))
            if body:
                writer.write(body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status, hdrs = parse_head(head.split(b"\r\n"))
            data = b""
            if has_body(method, status):
                if "chunked" in hdrs.get("transfer-encoding", "").lower():
                    parts = bytearray()
                    while True:
                        size = int((await reader.readline()).split(b";")[0], 16)
                        if size == 0:
                            while (await reader.readline()) not in (b"\r\n", b""):
                                pass
                            break
                        parts += await reader.readexactly(size + 2)
                        del parts[-2:]
                    data = bytes(parts)
                elif "content-length" in hdrs:
                    data = await reader.readexactly(int(hdrs["content-length"]))
                else:
                    data = await reader.read()
                    hdrs["connection"] = "close"
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            await self.close()
            raise HTTPFailure(f"{method} {target}: {exc}") from exc
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, hdrs, data)
