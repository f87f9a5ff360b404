"""The reference peer: Debian's ``docker-registry`` (CNCF distribution 2.8.2) as a live process."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.servers.dockyard import ServerProcess

DISTRIBUTION = shutil.which("docker-registry") or "/usr/bin/docker-registry"


class DistributionRegistry(ServerProcess):
    """``docker-registry serve CONFIG`` on 127.0.0.1, own port, given storage root; stopped by pid."""

    what = "docker-registry"

    def __init__(self, workdir: Path, *, root: Path | None = None, port: int | None = None) -> None:
        super().__init__(workdir, port, "distribution.log")
        self.root = root or workdir / "data"
        self.config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": "interop-test-secret"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
        }
        self.config_path = workdir / "distribution.yml"

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config))

    def command(self) -> list[str]:
        return [DISTRIBUTION, "serve", str(self.config_path)]

    def start(self, timeout: float = 20.0) -> DistributionRegistry:
        self._spawn(timeout, verify=False)
        return self

    def __enter__(self) -> DistributionRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
