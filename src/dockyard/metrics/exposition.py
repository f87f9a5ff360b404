"""The debug listener of the serving parent: every worker's metrics, summed, on one address.

Workers run prometheus-client in multiprocess mode: each writes its values into memory-mapped
files named by its pid in one directory (``PROMETHEUS_MULTIPROC_DIR``). The serving parent
creates that directory before granian starts a worker (a fresh one per server, or the operator's,
emptied: files left by an earlier server would add its counts to this one's), serves
``http.debug.prometheus.path`` on ``http.debug.addr`` from a thread, and removes the directory it
created when the server stops. Counters and histograms of a worker that died stay in the sums
(they are totals); the gauges of live processes only (uploads in progress, queue depths) drop a
dead worker's files at the next scrape.

This runs in the lean parent: it imports prometheus-client and the standard library only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def prepare_directory(environ: dict[str, str] | os._Environ[str]) -> tuple[str, bool]:
    """The directory the workers write to, emptied, and whether this server created it (and so
    removes it at exit). Sets ``PROMETHEUS_MULTIPROC_DIR`` in ``environ`` for the workers."""
    chosen = environ.get(MULTIPROC_ENV)
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        for stale in glob.glob(os.path.join(chosen, "*.db")):
            os.remove(stale)
        return chosen, False
    created = tempfile.mkdtemp(prefix="dockyard-metrics-")
    environ[MULTIPROC_ENV] = created
    return created, True


def remove_directory(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead(directory: str) -> None:
    """Drop the live-gauge files of worker processes that are gone."""
    from prometheus_client import multiprocess

    dead = {int(m.group(1)) for f in os.listdir(directory) if (m := _LIVE_FILE.fullmatch(f))}
    for pid in dead:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def scrape(directory: str) -> bytes:
    """The text exposition of every process's values in ``directory``."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    reap_dead(directory)
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_app(directory: str, path: str) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    from prometheus_client import CONTENT_TYPE_LATEST

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != path or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body = scrape(directory)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class DebugListener:
    """``http.debug.addr`` served from a daemon thread until :meth:`close`."""

    def __init__(self, host: str, port: int, path: str, directory: str) -> None:
        self.server = make_server(
            host,
            port,
            metrics_app(directory, path),
            server_class=_Server6 if ":" in host else _Server,
            handler_class=_QuietHandler,
        )
        self.thread = threading.Thread(target=self.server.serve_forever, name="dockyard-debug", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()
            self.server.server_close()
