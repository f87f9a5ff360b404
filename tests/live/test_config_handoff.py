"""``dockyard serve`` hands its configuration to the workers without the environment: a secret in
the configuration shows in no ``/proc/<pid>/environ`` of the server's processes."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx

from tests.servers.dockyard import LiveRegistry


def _group(pgid: int) -> list[int]:
    """The processes of a process group (the server and its workers)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            out.append(int(stat.parent.name))
    return out


def test_workers_read_the_configuration_that_no_environment_shows(tmp_path: Path) -> None:
    secret = f"do-not-leak-{secrets.token_hex(8)}"
    config = {
        "http": {"secret": secret, "headers": {"X-Handoff": ["read"]}},
        "storage": {"cache": {"blobdescriptor": "inmemory"}},  # accepted but ignored: a warning
    }
    with LiveRegistry(tmp_path, config=config, workers=2) as registry:
        assert registry.proc is not None
        parent = registry.proc.pid
        for _ in range(4):  # the workers built their app from the configuration
            assert httpx.get(f"{registry.url}/v2/").headers["X-Handoff"] == "read"
        processes = _group(parent)
        assert parent in processes and len(processes) >= 3, processes  # the parent and two workers
        for pid in processes:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert not any(secret.encode() in var for var in environ), pid
            assert not any(var.startswith(b"DOCKYARD_CONFIG_JSON=") for var in environ), pid
        handoff = next(
            var.split(b"=", 1)[1].decode()
            for var in Path(f"/proc/{parent}/environ").read_bytes().split(b"\0")
            if var.startswith(b"DOCKYARD_CONFIG_PATH=")
        )
        assert handoff.startswith(f"/proc/{parent}/fd/")  # held by the parent, on no disk
        assert json.loads(Path(handoff).read_bytes())["http"]["secret"] == secret
    warnings = [json.loads(line) for line in registry.log().splitlines() if "accepted but ignored" in line]
    assert [w["section"] for w in warnings] == ["storage.cache"]
