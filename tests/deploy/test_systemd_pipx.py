"""The systemd unit and the pipx install it runs.

A wheel built from the checkout is installed with pipx into a fresh PIPX_HOME (its dependencies
from the wheels the image build uses, so nothing is fetched again); ``dockyard --version`` answers
and ``dockyard serve`` answers ``/v2/``. The unit, with ExecStart pointed at that install, passes
``systemd-analyze verify`` and scores "OK" or better in ``systemd-analyze security --offline=yes``
(PID 1 here is not systemd: the unit is checked, never started).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.clients.conftest import run
from tests.deploy.conftest import FACTS, REPO, Timer, wait_for, wheelhouse
from tests.servers.dockyard import free_port

pytestmark = [pytest.mark.deploy, pytest.mark.builds]

UNIT = REPO / "deploy" / "systemd" / "dockyard.service"
HARDENING = ["DynamicUser=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/dockyard", "NoNewPrivileges=yes",
             "LimitNOFILE=65536", "PrivateTmp=yes", "CapabilityBoundingSet="]  # fmt: skip


@pytest.fixture(scope="module")
def pipx_dockyard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pipx install`` of a freshly built wheel; returns the installed ``dockyard`` command."""
    tmp = tmp_path_factory.mktemp("pipx")
    with Timer("pipx: build the wheel, install it"):
        # From a copy, so the build leaves nothing in the checkout; the isolated build environment
        # takes setuptools from the cached wheels too.
        source = tmp / "source"
        shutil.copytree(
            REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse())}
        run([sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", source],
            env=offline, timeout=600, cwd=tmp)  # fmt: skip
        wheel = next((tmp / "dist").glob("dockyard-*.whl"))
        env = {"PIPX_HOME": str(tmp / "pipx"), "PIPX_BIN_DIR": str(tmp / "bin"), "PATH": "/usr/bin:/bin"}
        pip_args = f"--no-index --find-links {wheelhouse()}"
        run([sys.executable, "-m", "pipx", "install", "--pip-args", pip_args, wheel], env=env, timeout=600)
    return tmp / "bin" / "dockyard"


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
