"""Real server processes for tests: own port, own storage root, stopped by their process id.

:class:`ServerProcess` starts a command, waits until a URL answers with an expected status, and
stops the whole process group; :class:`LiveRegistry` is ``dockyard serve`` on top of it (the
distribution peer in ``tests/interop/distribution.py`` is another).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from dockyard.testing.processes import stop_group

DOCKYARD = str(Path(sys.executable).with_name("dockyard"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class ServerProcess:
    """A server started in its own process group; subclasses give the command and config."""

    what = "server"
    ready_path = "/v2/"
    ready_statuses: tuple[int, ...] = (200,)

    def __init__(self, workdir: Path, port: int | None, log_name: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_path = workdir / log_name
        self.env: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.tls = False

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _spawn(self, timeout: float, verify: Any) -> None:
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.update(self.env)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.what} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                answer = httpx.get(f"{self.url}{self.ready_path}", timeout=2, verify=verify)
                if answer.status_code in self.ready_statuses:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.what} did not answer within {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the server (and its workers) by process id; SIGKILL hits the whole group."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        try:
            return stop_group(proc, sig, timeout)
        finally:
            if self._log is not None:
                self._log.close()


class LiveRegistry(ServerProcess):
    """``dockyard serve``: ``start()``, then ``url`` (base URL), ``host`` (``127.0.0.1:PORT``), ``root``."""

    what = "dockyard"

    def __init__(
        self,
        workdir: Path,
        *,
        config: dict[str, Any] | None = None,
        workers: int = 2,
        root: Path | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, port, "dockyard.log")
        self.root = root or workdir / "data"
        self.workers = workers
        self.env = env or {}
        self.config = deep_merge(
            {
                "version": 0.1,
                "log": {"level": "info", "formatter": "json"},
                "http": {"addr": f"127.0.0.1:{self.port}"},
                "storage": {"filesystem": {"rootdirectory": str(self.root)}, "delete": {"enabled": True}},
            },
            config or {},
        )
        self.tls = bool(self.config["http"].get("tls"))
        self.config_path = workdir / "config.yml"

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config))

    def command(self) -> list[str]:
        return [DOCKYARD, "serve", "--config", str(self.config_path), "--workers", str(self.workers)]

    def start(self, timeout: float = 30.0, verify: Any = False) -> LiveRegistry:
        self._spawn(timeout, verify)
        return self

    def __enter__(self) -> LiveRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
