"""A webhook receiver the tests start and stop: a real HTTP server on loopback, recording envelopes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Listens on ``port`` once :meth:`start` is called (before that, nothing does: "down")."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.envelopes: list[tuple[dict[str, str], bytes]] = []
        self.targets: list[str] = []  # each POST's request target (absolute when sent to a proxy)
        self.refuse_over: int | None = None  # envelopes of more events get 413 (too large)
        self.refused: list[int] = []  # the sizes of the envelopes refused
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                content = self.rfile.read(length)
                limit = receiver.refuse_over
                size = len(json.loads(content)["events"]) if limit is not None else 0
                if limit is not None and size > limit:
                    receiver.refused.append(size)
                    self.send_response(413)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.envelopes.append(({k.lower(): v for k, v in self.headers.items()}, content))
                    receiver.targets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for _, content in self.envelopes for e in json.loads(content)["events"]]
