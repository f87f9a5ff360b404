"""Which server processes answered: every worker of a multi-process server must be serving
before a measurement starts.

``Server.start`` used to return once the port answered and the worker processes existed; one
worker could still be importing, so the first figures of a round (``GET /v2/`` at c=16) measured
one worker doing all the work. Here a connection is traced to the process that accepted it: the
server side of a loopback connection is the ``/proc/net/tcp`` entry whose remote port is the
client's local port, and its socket inode is an open file of exactly one process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from bench.httpclient import Connection


def _server_side_inodes(server_port: int, client_ports: set[int]) -> set[int]:
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) in client_ports:
                inodes.add(inode)
    return inodes


def _owners(pids: list[int], inodes: set[int]) -> set[int]:
    wanted = {f"socket:[{i}]" for i in inodes}
    owners = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                        owners.add(pid)
                        break
    return owners


def answering(connect: Callable[[], Connection], port: int, pids: list[int], connections: int) -> set[int]:
    """The processes among ``pids`` that answered one of ``connections`` ``GET /v2/`` requests,
    each on a connection of its own to ``port`` (all held open until they are traced, so each
    is accepted by whichever worker is free)."""
    conns = [connect() for _ in range(connections)]
    try:
        for conn in conns:
            conn.request("GET", "/v2/").expect(200, what="worker check")
        client_ports = {conn.local_port() for conn in conns}
        return _owners(pids, _server_side_inodes(port, client_ports))
    finally:
        for conn in conns:
            conn.close()
