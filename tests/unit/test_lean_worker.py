"""A worker loads the optional features' libraries only when they are configured: each costs every
worker process memory (httpx alone brings click, rich and pygments when they are installed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
assert "sqlite3" not in sys.modules, "loaded before the app: the check below would be blind"
from dockyard.app import create_app
from dockyard.config import parse_config

OPTIONAL = ("httpx", "prometheus_client", "cvss", "packageurl", "sqlite3", "dockyard.scan.policy", "cryptography")
storage = {"filesystem": {"rootdirectory": sys.argv[1]}}
create_app(parse_config({"version": "0.1", "storage": storage}))
print(",".join(m for m in OPTIONAL if m in sys.modules))
debug = {"addr": "127.0.0.1:5001", "prometheus": {"enabled": True}}
create_app(parse_config({"version": "0.1", "storage": storage, "http": {"debug": debug}}))
print(",".join(m for m in OPTIONAL if m in sys.modules))
policy = {"name": "signed", "repositories": ["**"], "signed": True}
create_app(parse_config({"version": "0.1", "storage": storage, "scan": {"policies": [policy]}}))
print(",".join(m for m in OPTIONAL if m in sys.modules))
"""


def test_only_a_worker_with_metrics_loads_prometheus_and_none_loads_httpx_or_the_advisory_libraries(
    tmp_path: Path,
) -> None:
    """... and only a worker with pull policies loads them (and the signature checks' crypto)."""
    # Not measured by coverage: its start in the child (make coverage) loads sqlite3 for its data file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    plain, with_metrics, with_policies = out.stdout.splitlines()
    assert plain == ""
    assert with_metrics == "prometheus_client"
    assert with_policies == "prometheus_client,dockyard.scan.policy,cryptography"
