"""htpasswd mode against real clients: docker, podman, skopeo --creds, ctr --user, oras basic auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import oras.client
import pytest

from tests.auth.live import USERS, AuthRegistry, auth_registry, push_as
from tests.clients.conftest import ContainersTools, Docker, make_image
from tests.clients.images import fetch_manifest, write_docker_archive

TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    live = auth_registry(tmp_path_factory.mktemp("htpasswd-registry"), "htpasswd").start()
    try:
        yield live
    finally:
        live.stop()
    log = live.log()
    assert "Traceback" not in log, log
    for secret in USERS.values():
        assert secret not in log  # credentials are never logged


def _url(registry: AuthRegistry, user: str) -> str:
    return f"http://{user}:{USERS[user]}@{registry.host}"


def _load(docker: Docker, tmp_path: Path, message: str, ref: str) -> None:
    archive = write_docker_archive(tmp_path / "image.tar", make_image(message), "dockyard-tests/auth:src")
    docker("load", "-i", archive)
    docker("tag", "dockyard-tests/auth:src", ref)


def test_docker_login_push_pull_and_denied(docker: Docker, registry: AuthRegistry, tmp_path: Path) -> None:
    host = registry.host
    wrong = docker("login", "-u", "alice", "-p", "nope", host, check=False)
    assert wrong.returncode != 0
    assert "unauthorized" in wrong.stderr.lower()

    ref = f"{host}/bob/app:v1"
    _load(docker, tmp_path, "htpasswd docker", ref)
    anonymous = docker("push", ref, check=False)
    assert anonymous.returncode != 0

    docker("login", "-u", "bob", "-p", USERS["bob"], host)
    out = docker("push", ref).stdout
    pushed = fetch_manifest(_url(registry, "bob"), "bob/app", "v1")
    assert f"digest: {pushed.digest}" in out
    docker("rmi", ref)
    assert f"Digest: {pushed.digest}" in docker("pull", ref).stdout

    # bob may not push outside bob/**: docker shows the registry's "denied" message.
    other = f"{host}/team-x/app:v1"
    docker("tag", ref, other)
    denied = docker("push", other, check=False)
    assert denied.returncode != 0
    assert "denied: requested access to the resource is denied" in denied.stderr + denied.stdout
    docker("logout", host)


def test_anonymous_pull_of_public_repository(docker: Docker, registry: AuthRegistry) -> None:
    """Anonymous reads of ``library/**`` work over HTTP; docker itself refuses to go on after a Basic
    challenge without credentials ("no basic auth credentials"), so anonymous docker pulls need token
    mode (tests/clients/test_auth_token.py)."""
    image = make_image("public library image")
    push_as(registry, "alice", "library/tool", image, "v1")
    assert fetch_manifest(registry.url, "library/tool", "v1").digest == image.digest
    assert httpx.get(f"{registry.url}/v2/bob/app/manifests/v1").status_code == 401
    docker("logout", registry.host, check=False)
    refused = docker("pull", f"{registry.host}/library/tool:v1", check=False)
    assert "no basic auth credentials" in refused.stderr


def test_podman_login_and_skopeo_creds(tools: ContainersTools, registry: AuthRegistry) -> None:
    host = registry.host
    image = make_image("htpasswd podman")
    push_as(registry, "alice", "bob/podman-src", image, "v1")
    wrong = tools("podman", "login", TLS, "-u", "bob", "-p", "wrong", host, check=False)
    assert wrong.returncode != 0
    tools("podman", "login", TLS, "-u", "bob", "-p", USERS["bob"], host)
    tools("podman", "pull", TLS, f"{host}/bob/podman-src:v1")
    tools("podman", "push", TLS, f"{host}/bob/podman-src:v1", f"{host}/bob/podman-dst:v1")
    assert fetch_manifest(_url(registry, "bob"), "bob/podman-dst", "v1").json()["config"]["digest"] == (
        image.config.digest
    )
    tools("podman", "logout", host)

    creds = f"alice:{USERS['alice']}"
    tools("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--preserve-digests",
          "--src-creds", creds, "--dest-creds", creds,
          f"docker://{host}/bob/podman-src:v1", f"docker://{host}/alice/skopeo:v1")  # fmt: skip
    assert fetch_manifest(_url(registry, "alice"), "alice/skopeo", "v1").digest == image.digest
    refused = tools("skopeo", "inspect", TLS, "--creds", f"bob:{USERS['bob']}",
                    f"docker://{host}/alice/skopeo:v1", check=False)  # fmt: skip
    assert refused.returncode != 0


def test_ctr_user(docker: Docker, registry: AuthRegistry, tmp_path: Path) -> None:
    image = make_image("htpasswd ctr")
    push_as(registry, "alice", "bob/ctr", image, "v1")
    ref = f"{registry.host}/bob/ctr:v1"
    denied = docker.ctr("images", "pull", "--plain-http", ref, check=False)
    assert denied.returncode != 0
    docker.ctr("images", "pull", "--plain-http", "--user", f"bob:{USERS['bob']}", ref)
    copy = f"{registry.host}/bob/ctr-copy:v1"
    docker.ctr("images", "tag", ref, copy)
    docker.ctr("images", "push", "--plain-http", "--user", f"bob:{USERS['bob']}", copy)
    assert fetch_manifest(_url(registry, "bob"), "bob/ctr-copy", "v1").digest == image.digest
    docker.ctr("images", "rm", ref, copy)


def test_oras_basic_auth(registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_bytes(b"oras with basic auth\n")
    client = oras.client.OrasClient(hostname=registry.host, insecure=True, auth_backend="basic")
    target = f"{registry.host}/bob/oras:v1"
    client.auth.set_basic_auth("bob", USERS["bob"])  # what OrasClient.login sets, without a config file
    assert client.push(target=target, files=["notes.txt"], quiet=True).status_code == 201
    pulled = client.pull(target=target, outdir=str(tmp_path / "out"))
    assert [Path(p).read_bytes() for p in pulled] == [b"oras with basic auth\n"]
    assert httpx.get(f"{registry.url}/v2/bob/oras/manifests/v1").status_code == 401


def test_robot_token_as_docker_password(docker: Docker, registry: AuthRegistry, tmp_path: Path) -> None:
    out = registry.cli("token", "create", "ci", "-r", "bob/**", "--actions", "pull", "--expires", "1h").stdout
    user, token = (line.split()[1] for line in out.splitlines()[:2])
    assert user == "robot$ci" and token.startswith("dyt_")
    assert token not in (registry.workdir / "robots.json").read_text()  # stored hashed
    docker("login", "-u", user, "-p", token, registry.host)
    assert "Digest:" in docker("pull", f"{registry.host}/bob/app:v1").stdout
    listing = registry.cli("token", "list").stdout.splitlines()[1].split()
    assert listing[0] == "ci" and listing[-1] == "active"
    registry.cli("token", "revoke", "ci")
    docker("logout", registry.host)
    assert docker("login", "-u", user, "-p", token, registry.host, check=False).returncode != 0
