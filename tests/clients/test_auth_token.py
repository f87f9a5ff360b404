"""Token mode (built-in token server) against real clients: docker, podman, skopeo --creds, ctr --user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.live import USERS, AuthRegistry, auth_registry
from tests.clients.conftest import ContainersTools, Docker, make_image
from tests.clients.images import write_docker_archive

TLS = "--tls-verify=false"
SERVICE = "dockyard-test"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    live = auth_registry(tmp_path_factory.mktemp("token-registry"), "token").start()
    try:
        yield live
    finally:
        live.stop()
    log = live.log()
    assert "Traceback" not in log, log
    for secret in USERS.values():
        assert secret not in log
    assert "eyJ" not in log  # no JWT in the logs


def token(registry: AuthRegistry, user: str | None, *scopes: str) -> str:
    auth = (user, USERS[user]) if user else None
    resp = httpx.get(f"{registry.url}/token", params={"service": SERVICE, "scope": list(scopes)}, auth=auth)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["token"])


def manifest_digest(registry: AuthRegistry, user: str, repo: str, tag: str) -> str:
    bearer = token(registry, user, f"repository:{repo}:pull")
    resp = httpx.head(
        f"{registry.url}/v2/{repo}/manifests/{tag}",
        headers={
            "Authorization": f"Bearer {bearer}",
            "Accept": "application/vnd.docker.distribution.manifest.v2+json",
        },
    )
    assert resp.status_code == 200, resp.headers
    return resp.headers["Docker-Content-Digest"]


def _load(docker: Docker, tmp_path: Path, message: str, *refs: str) -> None:
    archive = write_docker_archive(tmp_path / "image.tar", make_image(message), "dockyard-tests/token:src")
    docker("load", "-i", archive)
    for ref in refs:
        docker("tag", "dockyard-tests/token:src", ref)


def test_challenge(registry: AuthRegistry) -> None:
    resp = httpx.get(f"{registry.url}/v2/bob/app/tags/list")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer realm="{registry.url}/token",service="{SERVICE}",scope="repository:bob/app:pull"'
    )


def test_docker_login_push_pull_denied_and_anonymous(
    docker: Docker, registry: AuthRegistry, tmp_path: Path
) -> None:
    host = registry.host
    assert docker("login", "-u", "bob", "-p", "wrong", host, check=False).returncode != 0
    ref, other, public = f"{host}/bob/app:v1", f"{host}/team-x/app:v1", f"{host}/library/tool:v1"
    _load(docker, tmp_path, "token docker", ref, other, public)

    docker("login", "-u", "bob", "-p", USERS["bob"], host)
    out = docker("push", ref).stdout
    assert f"digest: {manifest_digest(registry, 'bob', 'bob/app', 'v1')}" in out
    docker("rmi", ref)
    assert "Downloaded newer image" in docker("pull", ref).stdout
    denied = docker("push", other, check=False)
    assert denied.returncode != 0
    assert "denied: requested access to the resource is denied" in denied.stderr + denied.stdout

    docker("login", "-u", "alice", "-p", USERS["alice"], host)
    docker("push", public)
    docker("logout", host)
    docker("rmi", public)
    assert "Downloaded newer image" in docker("pull", public).stdout  # anonymous: library/** is public
    assert docker("pull", ref, check=False).returncode != 0  # anonymous: bob/** is not


def test_podman_login_and_skopeo_creds(
    tools: ContainersTools, docker: Docker, registry: AuthRegistry
) -> None:
    host = registry.host
    assert tools("podman", "login", TLS, "-u", "bob", "-p", "wrong", host, check=False).returncode != 0
    tools("podman", "login", TLS, "-u", "bob", "-p", USERS["bob"], host)
    tools("podman", "pull", TLS, f"{host}/bob/app:v1")
    tools("podman", "push", TLS, f"{host}/bob/app:v1", f"{host}/bob/podman:v1")
    assert manifest_digest(registry, "bob", "bob/podman", "v1").startswith("sha256:")
    tools("podman", "logout", host)

    creds = f"bob:{USERS['bob']}"
    tools("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--preserve-digests",
          "--src-creds", creds, "--dest-creds", creds,
          f"docker://{host}/bob/app:v1", f"docker://{host}/bob/skopeo:v1")  # fmt: skip
    assert manifest_digest(registry, "bob", "bob/skopeo", "v1") == manifest_digest(
        registry, "bob", "bob/app", "v1"
    )
    refused = tools("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    "--src-creds", creds, "--dest-creds", creds,
                    f"docker://{host}/bob/app:v1", f"docker://{host}/alice/skopeo:v1", check=False)  # fmt: skip
    assert refused.returncode != 0


def test_ctr_user(docker: Docker, registry: AuthRegistry) -> None:
    ref = f"{registry.host}/bob/app:v1"
    assert docker.ctr("images", "pull", "--plain-http", ref, check=False).returncode != 0
    docker.ctr("images", "pull", "--plain-http", "--user", f"bob:{USERS['bob']}", ref)
    copy = f"{registry.host}/bob/ctr:v1"
    docker.ctr("images", "tag", ref, copy)
    docker.ctr("images", "push", "--plain-http", "--user", f"bob:{USERS['bob']}", copy)
    assert manifest_digest(registry, "bob", "bob/ctr", "v1") == manifest_digest(
        registry, "bob", "bob/app", "v1"
    )
    docker.ctr("images", "rm", ref, copy)
