"""Fuzz of HTTP/1.1 request framing against a live server, over raw sockets: chunked encoding
(sizes that lie, are not hex, overflow, lack CRLF; extensions, trailers), Content-Length lies and
nonsense, both framings at once, and heads of every size. Every answer is < 500 or a closed
connection, never granian's plain-text 500, and the server keeps serving.

The client always half-closes after sending, so a body shorter than declared ends at once instead
of waiting for the body timeout."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import budget
from tests.live.rawhttp import connect, read_reply, upload_path
from tests.servers.dockyard import LiveRegistry

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    workdir: Path = tmp_path_factory.mktemp("framing")
    config = {"http": {"timeouts": {"header": "2s", "body": "1s"}}, "log": {"level": "warn"}}
    with LiveRegistry(workdir, config=config, workers=1) as live:
        yield live


CHUNK_SIZE = st.one_of(
    st.integers(0, 64).map(lambda n: f"{n:x}".encode()),
    st.sampled_from(
        [b"zz", b"-1", b"ffffffffffffffffffff", b"0x10", b" 5", b"5 ", b"", b"5;ext=1", b"5;" + b"e" * 5000]
    ),
)


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        size = draw(CHUNK_SIZE)
        data = draw(st.binary(max_size=40))
        crlf = draw(st.sampled_from([b"\r\n", b"\n", b"", b"XX"]))
        out += size + b"\r\n" + data + crlf
    if draw(st.booleans()):
        out += b"0\r\n" + draw(st.sampled_from([b"", b"Trailer: x\r\n", b"Bad Trailer\r\n"])) + b"\r\n"
    return out


@st.composite
def framed(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = draw(st.binary(max_size=200))
    kind = draw(
        st.sampled_from(["length", "short", "long", "nonsense", "two", "chunked", "both", "te-odd", "none"])
    )
    if kind == "length":
        return [(b"Content-Length", str(len(body)).encode())], body
    if kind == "short":  # declares less: the rest reads as the next request
        return [(b"Content-Length", str(max(0, len(body) - draw(st.integers(1, 50)))).encode())], body
    if kind == "long":
        return [(b"Content-Length", str(len(body) + draw(st.integers(1, 10**6))).encode())], body
    if kind == "nonsense":
        value = draw(st.sampled_from([b"-1", b"1e3", b"0x10", b"", b"abc", b"9" * 30, b"1, 2", b" 3"]))
        return [(b"Content-Length", value)], body
    if kind == "two":
        return [(b"Content-Length", b"3"), (b"Content-Length", b"4")], body
    if kind == "chunked":
        return [(b"Transfer-Encoding", b"chunked")], draw(chunked_body())
    if kind == "both":
        return [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"5")], draw(chunked_body())
    if kind == "te-odd":
        value = draw(
            st.sampled_from([b"gzip, chunked", b"chunked, gzip", b"identity", b"x", b"chunked, chunked"])
        )
        return [(b"Transfer-Encoding", value)], draw(chunked_body())
    return [], body


HEADER = st.tuples(
    st.sampled_from(
        [b"X-Fuzz", b"Content-Type", b"Range", b"Content-Range", b"Authorization", b"Host", b"Bad Name", b""]
    ),
    st.one_of(
        st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b),
        st.integers(0, 70_000).map(lambda n: b"v" * n),
    ),
)


@st.composite
def raw_request(draw: st.DrawFn, upload: str) -> bytes:
    method = draw(st.sampled_from([b"PATCH", b"PUT", b"POST", b"GET", b"HEAD", b"DELETE"]))
    target = draw(
        st.sampled_from(
            [
                upload.encode(),
                b"/v2/fz/repo/manifests/t",
                b"/v2/fz/repo/blobs/uploads/",
                b"/v2/",
                b"/ui/login",
                b"*",
                b"/v2/%00",
            ]
        )
    )
    framing, body = draw(framed())
    headers = [(b"Host", b"x"), *framing, *draw(st.lists(HEADER, max_size=4))]
    head = method + b" " + target + b" HTTP/1.1\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return head + b"\r\n" + body


def _send(registry: LiveRegistry, request: bytes) -> tuple[int | None, bytes]:
    with connect(registry, timeout=15.0) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return None, b""
        reply = read_reply(sock)
    return reply.status, reply.body


def test_framing_fuzz(registry: LiveRegistry) -> None:
    upload = upload_path(registry, "fz/repo")

    @budget(60)
    @given(request=raw_request(upload))
    def check(request: bytes) -> None:
        status, body = _send(registry, request)
        assert status is None or status < 500, (status, body[:200], request[:300])
        assert b"Internal server error" not in body
        assert httpx.get(f"{registry.url}/v2/", timeout=15).status_code == 200

    check()
    assert "Traceback" not in registry.log()
