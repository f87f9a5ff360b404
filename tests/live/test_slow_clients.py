"""Slow clients are closed after the stated limits (issue #18): a request head that trickles
(granian's header read timeout, ``http.timeouts.header``), an idle keep-alive connection (the same
timer), a body that stops arriving (``http.timeouts.body``: 408), and a body whose chunked framing
granian refuses (400 with an OCI error, not granian's plain-text 500).

The limits are set short here (1 s and 2 s, against defaults of 15 s and 60 s) so the test need
not wait; the only time bound checked is "closed long before the default would have"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.rawhttp import connect, exchange, read_reply, trickle, upload_path
from tests.servers.dockyard import LiveRegistry

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    workdir: Path = tmp_path_factory.mktemp("slow")
    config = {"http": {"timeouts": {"header": f"{HEADER_TIMEOUT}s", "body": f"{BODY_TIMEOUT}s"}}}
    with LiveRegistry(workdir, config=config, workers=1) as live:
        yield live


def _error(body: bytes) -> str:
    return str(json.loads(body)["errors"][0]["code"])


def test_trickled_request_head_is_closed(registry: LiveRegistry) -> None:
    with connect(registry) as sock:
        head = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400
        closed_after = trickle(sock, head, pause=0.05, limit=15.0)  # 20 s to send it all
    assert closed_after is not None, "a head trickling for 15 s was not closed"
    assert closed_after < 10.0  # the configured second, not granian's default 30 s


def test_idle_keep_alive_connection_is_closed(registry: LiveRegistry) -> None:
    with connect(registry, timeout=12.0) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(sock).status == 200
        assert sock.recv(100) == b""  # closed by the server, before our 12 s timeout


@pytest.mark.parametrize(
    "body",
    [b"10\r\nabc", b"5\r\nabcde\r\n", b"", b"3\r\nabc\r\n0\r\n"],
    ids=["chunk-cut-short", "no-last-chunk", "nothing", "no-final-crlf"],
)
def test_chunked_body_that_stops_is_408(registry: LiveRegistry, body: bytes) -> None:
    path = upload_path(registry)
    request = f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body
    reply = exchange(registry, request)
    assert reply.status == 408, reply
    assert _error(reply.body) == "TIMEOUT"


def test_content_length_lie_is_408(registry: LiveRegistry) -> None:
    path = upload_path(registry)
    reply = exchange(registry, f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc".encode())
    assert reply.status == 408, reply
    assert _error(reply.body) == "TIMEOUT"


def test_manifest_body_that_stops_is_408(registry: LiveRegistry) -> None:
    request = b"PUT /v2/raw/repo/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"
    reply = exchange(registry, request)
    assert reply.status == 408 and _error(reply.body) == "TIMEOUT", reply


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",
        b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcXX0\r\n\r\n",
        b"-1\r\na\r\n",
    ],
    ids=["bad-size", "huge-size", "missing-crlf", "negative-size"],
)
def test_broken_chunked_framing_is_400_blob_upload_invalid(registry: LiveRegistry, body: bytes) -> None:
    path = upload_path(registry)
    request = f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body
    reply = exchange(registry, request)
    assert reply.status == 400, reply
    assert _error(reply.body) == "BLOB_UPLOAD_INVALID"
    assert b"Internal server error" not in reply.body


def test_a_steady_slow_upload_is_not_cut(registry: LiveRegistry) -> None:
    """Pauses shorter than the body timeout never trip it, however long the body takes."""
    path = upload_path(registry)
    data = b"x" * 8
    with connect(registry) as sock:
        sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode())
        assert trickle(sock, data, pause=BODY_TIMEOUT / 4, limit=30.0) is None
        reply = read_reply(sock)
    assert reply.status == 202, reply
    assert b"range: 0-7" in reply.head.lower()


def test_oversized_request_head_is_431(registry: LiveRegistry) -> None:
    """granian's stated head limit: 512 KiB of request line and headers."""
    assert (
        exchange(registry, b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 400_000 + b"\r\n\r\n").status
        == 200
    )
    reply = exchange(registry, b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 530_000 + b"\r\n\r\n")
    assert reply.status == 431, reply
