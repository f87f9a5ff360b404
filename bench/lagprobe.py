"""How long a trivial request waits while the server is busy: #16's guard on inline metadata
I/O ("event-loop lag p99 under the small-image push must stay below 5 ms"), seen from outside.

A probe process (not a thread: it would share the pushing client's GIL and measure that) sends
``GET /v2/`` every ``interval`` seconds over a few keep-alive connections in turn, so each worker
gets some, and records each response time. ``GET /v2/`` does no I/O in the server, so past its
idle cost (the p50 when nothing else runs, ~0.2 ms here) the time is the wait for a worker's event loop to
get to it: the lag of that loop plus, on a machine with more busy threads than cores, the wait
for a core. Probes run at 50/s, adding about 1 % to the server's work during the push.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection as Pipe

from bench.httpclient import Connection


class LagProbe:
    def __init__(self, port: int, interval: float = 0.02, connections: int = 4) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.get_context("fork").Process(
            target=_probe_loop, args=(child, port, interval, connections), daemon=True, name="lag-probe"
        )

    def __enter__(self) -> LagProbe:
        self._proc.start()
        self._conn.recv()  # connected
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.is_alive():
            self._conn.send("stop")
        self._proc.join(10)

    def stop(self) -> list[float]:
        """Stop probing; the response times (seconds) of every probe made."""
        self._conn.send("stop")
        times: list[float] = self._conn.recv()
        self._proc.join(10)
        return times


def _probe_loop(pipe: Pipe, port: int, interval: float, connections: int) -> None:
    conns = [Connection(port, timeout=30) for _ in range(connections)]
    for conn in conns:
        conn.request("GET", "/v2/").expect(200, what="lag probe")
    pipe.send(None)
    times: list[float] = []
    i = 0
    while not pipe.poll(interval):
        started = time.perf_counter()
        conns[i % connections].request("GET", "/v2/").expect(200, what="lag probe")
        times.append(time.perf_counter() - started)
        i += 1
    pipe.recv()
    pipe.send(times)
    for conn in conns:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
