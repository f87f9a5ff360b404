"""A throwaway PostgreSQL server for tests: Debian's binaries run as a plain process.

``initdb`` into a fresh directory, then ``pg_ctl start`` on a free loopback port with its socket in
that directory and ``fsync=off``; ready in under a second. PostgreSQL refuses to run as root, so
as root the directory is handed to the ``postgres`` user and the binaries run through ``runuser``.
``stop`` ends the server by the pid in its ``postmaster.pid`` and removes the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

BIN_GLOB = "/usr/lib/postgresql/*/bin"


def find_bin() -> str | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(p.split("/")[-2]))
    return found[-1] if found and os.path.exists(os.path.join(found[-1], "pg_ctl")) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    def __init__(self, bin_dir: str) -> None:
        self.bin_dir = bin_dir
        self.directory = tempfile.mkdtemp(prefix="dockyard-pg-")
        self.data = os.path.join(self.directory, "data")
        self.port = _free_port()
        self.user = "dockyard"
        self.started_in = 0.0
        self._as: list[str] = []
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.directory, postgres.pw_uid, postgres.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.directory, timeout=60)

    def start(self) -> PostgresServer:
        began = time.monotonic()
        self._run(
            os.path.join(self.bin_dir, "initdb"), "-D", self.data, "-U", self.user, "--auth=trust",
            "--no-sync",
        )  # fmt: skip
        self.resume()
        self.started_in = time.monotonic() - began
        return self

    def resume(self) -> None:
        """Start the server on its data directory and port (again, after :meth:`halt`)."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.directory}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = os.path.join(self.directory, "server.log")
        self._run(
            os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-l", log, "-w", "start", "-o", options
        )

    def halt(self) -> None:
        """Stop the server and keep its data (an outage: :meth:`resume` brings it back)."""
        self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its DSN."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return self.dsn(name)

    def pid(self) -> int | None:
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the data is throwaway
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.02)
        shutil.rmtree(self.directory, ignore_errors=True)
