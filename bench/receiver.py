"""A webhook receiver for ``python -m bench --observe``: answers every POST with 200 at once and
counts the events it was sent (:func:`count_events`), in a process of its own (its CPU is
neither server's, though it shares the machine's cores with them).

``python -m bench.receiver PORT`` serves until SIGTERM; ``GET /count`` answers the number of
events received so far (an envelope's ``events`` array, or one CloudEvent)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

import orjson

from bench.httpclient import Connection, HTTPFailure
from dockyard.testing.processes import stop_group

ENVELOPE = b'{"events":['
TIMESTAMP = b'"timestamp":'


def count_events(body: bytes) -> int:
    """The events in one POST: a distribution envelope's are counted by their ``"timestamp":``
    keys (each event has one, and JSON escapes every quote inside a string, so no value holds
    the pattern) without decoding them; anything else is one CloudEvent if it is JSON at all.

    Decoding an envelope of 128 pulls cost this process 2.1 us an event with orjson and 4.4 with
    the standard library: CPU taken from the two registries it shares the machine's cores with,
    for a count."""
    if body.startswith(ENVELOPE):
        return body.count(TIMESTAMP)
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0
    return 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    events = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        n = count_events(body)
        with _Handler.lock:
            _Handler.events += n
        self._answer(b"")

    def do_GET(self) -> None:
        self._answer(str(_Handler.events).encode())

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Receiver:
    """The receiver process on ``port``: ``start()``, ``count()``, ``stop()`` by pid."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self, timeout: float = 30.0) -> Receiver:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", str(self.port)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.count()
                return self
            except (HTTPFailure, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the webhook receiver did not come up")

    def count(self) -> int:
        with Connection(self.port, timeout=5) as conn:
            return int(conn.request("GET", "/count").expect(200, what="receiver count").body)

    def settle(self, quiet: float = 0.5, limit: float = 120.0) -> None:
        """Return once no event has arrived for ``quiet`` seconds (at most ``limit``): the
        deliveries a step set off are over before the next step is timed, so neither registry's
        phase runs beside the other's (or its own earlier) webhook backlog."""
        deadline = time.monotonic() + limit
        last, since = self.count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.count()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, signal.SIGTERM, 10)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), _Handler)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
