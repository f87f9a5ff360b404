"""The systemd unit and the pipx install it runs.

A wheel built from the checkout is installed with pipx into a fresh PIPX_HOME (its dependencies
from the wheels the image build uses, so nothing is fetched again); ``dockyard --version`` answers
and ``dockyard serve`` answers ``/v2/``. The unit, with ExecStart pointed at that install, passes
``systemd-analyze verify`` and scores "OK" or better in ``systemd-analyze security --offline=yes``
(PID 1 here is not systemd: the unit is checked, never started).
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.clients.conftest import run
from tests.deploy.conftest import FACTS, REPO, Timer, pipx_install, wait_for
from tests.servers.dockyard import free_port

pytestmark = [pytest.mark.deploy, pytest.mark.builds]

UNIT = REPO / "deploy" / "systemd" / "dockyard.service"
HARDENING = ["DynamicUser=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/dockyard", "NoNewPrivileges=yes",
             "LimitNOFILE=65536", "PrivateTmp=yes", "CapabilityBoundingSet="]  # fmt: skip


@pytest.fixture(scope="module")
def pipx_dockyard() -> Path:
    """The installed ``dockyard`` command (see :func:`tests.deploy.conftest.pipx_install`)."""
    return pipx_install()


def test_pipx_install_serves(pipx_dockyard: Path, tmp_path: Path) -> None:
    assert run([pipx_dockyard, "--version"]).stdout.strip() == "dockyard 0.1.0"
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({
        "version": 0.1, "http": {"addr": f"127.0.0.1:{port}"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
    }))  # fmt: skip
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([pipx_dockyard, "serve", config, "--workers", "1"], stdout=log, stderr=log)
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 200, "pipx's dockyard serve"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()


def test_unit_verifies_and_is_hardened(pipx_dockyard: Path, tmp_path: Path) -> None:
    text = UNIT.read_text()
    for line in HARDENING:
        assert line in text.splitlines(), line
    # The unit as installed on this machine: ExecStart where pipx put dockyard.
    unit = tmp_path / "dockyard.service"
    unit.write_text(text.replace("/usr/local/bin/dockyard", str(pipx_dockyard)))
    with Timer("systemd-analyze verify + security"):
        verify = run(["systemd-analyze", "verify", "--man=no", unit], check=False)
        assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
        security = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", unit], check=False)
    match = re.search(r"Overall exposure level for dockyard\.service: ([0-9.]+) (\w+)", security.stdout)
    assert match is not None, security.stdout + security.stderr
    FACTS["systemd-analyze security exposure"] = f"{match[1]} {match[2]}"
    assert float(match[1]) <= 2.0 and match[2] in ("OK", "SAFE"), security.stdout
