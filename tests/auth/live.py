"""A ``dockyard serve`` with authentication: ready when ``/health`` answers (``/v2/`` answers 401)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.servers.dockyard import DOCKYARD, LiveRegistry

USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}  # alice: admin; bob: bob/** only
ACCESS = {
    "admins": ["alice"],
    "groups": {"builders": ["bob"]},
    "rules": [
        {"repositories": ["library/**"], "anonymous": True, "actions": ["pull"]},
        {"repositories": ["bob/**"], "groups": ["builders"], "actions": ["pull", "push", "delete"]},
    ],
}


class AuthRegistry(LiveRegistry):
    """Ready when ``/health`` answers (``/v2/`` asks for credentials)."""

    ready_path = "/health"

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DOCKYARD, *args, "--config", str(self.config_path)],
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )


def auth_registry(workdir: Path, mode: str, *, throttle: bool = False) -> AuthRegistry:
    """A registry in ``htpasswd`` or ``token`` mode with USERS (alice via Apache's ``htpasswd -B``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    htpasswd = workdir / "htpasswd"
    auth: dict[str, Any] = {
        "htpasswd": {"realm": "dockyard-test", "path": str(htpasswd)},
        "access": ACCESS,
        "robots": {"path": str(workdir / "robots.json")},
        "throttle": {"enabled": throttle, "attempts": 3, "window": "30s"},
    }
    if mode == "token":
        auth["token"] = {
            "service": "dockyard-test",
            "issuer": "dockyard-test-issuer",
            "server": {"enabled": True, "keys": str(workdir / "keys")},
        }
    live = AuthRegistry(workdir, config={"auth": auth})
    subprocess.run(
        ["htpasswd", "-cbB", str(htpasswd), "alice", USERS["alice"]], check=True, capture_output=True
    )
    live.config_path.write_text(yaml.safe_dump(live.config))
    live.cli("user", "add", "bob", "--password-stdin", "--cost", "5", stdin=USERS["bob"] + "\n")
    return live


def push_as(registry: LiveRegistry, user: str, repo: str, image: Any, tag: str) -> str:
    """``images.push_to_registry`` with Basic credentials on every request (Location is absolute)."""
    from tests.clients.images import _objects

    blobs, manifests = _objects(image)
    with httpx.Client(base_url=registry.url, auth=(user, USERS[user]), timeout=60) as client:
        for blob in blobs:
            start = client.post(
                f"/v2/{repo}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
            )
            assert start.status_code == 201, start.text
        for manifest in manifests:
            ref = tag if manifest is image.manifest else manifest.digest
            put = client.put(
                f"/v2/{repo}/manifests/{ref}",
                content=manifest.data,
                headers={"Content-Type": manifest.media_type},
            )
            assert put.status_code == 201, put.text
    return str(image.manifest.digest)
