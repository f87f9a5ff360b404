"""The compose files, run with Debian's docker-compose 1.29 (Compose v1) on the test's dockerd.

(a) ``registry.yml``: one registry, TLS and the built-in token server; docker logs in, pushes and
pulls, and pulls anonymously. With ``registry-accel.yml`` on top, nginx in front sends the blobs
from the volume (X-Accel-Redirect): push, pull, a blob GET, and nginx's access log.
(b) ``ha.yml``: nginx (TLS, and the S3 endpoint under the same address), two replicas,
SeaweedFS, PostgreSQL; docker pushes, a blob GET is a 307 to a presigned URL on nginx's S3 port,
then docker pulls in a loop while one replica is ``docker kill``ed, and every pull succeeds.
Each ends with ``down -v`` and checks that no container, network or volume of the project is left.

Third-party images are stand-ins built here (tests/deploy/standins, on dockyard's Debian base)
and passed through the files' ``*_IMAGE`` variables, as an operator would pass the upstream ones.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import Docker
from tests.deploy.conftest import (
    REPO,
    BuiltImage,
    Timer,
    container_ip,
    free_subnet,
    htpasswd,
    local_image,
    push_pull,
    self_signed,
    trusting,
    wait_for,
)
from tests.servers.dockyard import free_port

pytestmark = pytest.mark.deploy

COMPOSE_DIR = REPO / "deploy" / "compose"


class Compose:
    """``docker-compose -p PROJECT -f FILE`` with the test's environment."""

    def __init__(self, docker: Docker, project: str, files: list[Path], env: dict[str, str]) -> None:
        self.docker = docker
        self.project = project
        self.files = [arg for file in files for arg in ("-f", str(file))]
        self.env = {**docker.env, **env}

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker-compose", "--no-ansi", "-p", self.project, *self.files, *args]
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            logs = subprocess.run(
                ["docker-compose", "-p", self.project, *self.files, "logs", "--tail=40"],
                env=self.env, capture_output=True, text=True, timeout=60, check=False,
            ).stdout  # fmt: skip
            pytest.fail(
                f"{' '.join(argv)} exited {proc.returncode}\n{proc.stderr}\n--- logs\n{logs}", pytrace=False
            )
        return proc

    def container(self, service: str) -> str:
        return self("ps", "-q", service).stdout.strip()

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        found = []
        for kind in ("ps -a", "network ls", "volume ls"):
            found += self.docker(*kind.split(), "-q", "--filter", label).stdout.split()
        return found

    def down(self) -> None:
        self("down", "-v", "--remove-orphans", "-t", "5")
        assert self.leftovers() == [], "docker-compose down -v left containers, networks or volumes"


@pytest.fixture
def compose_tmp(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.builds
def test_single_registry_with_token_server(
    deploy_docker: Docker, dockyard_image: BuiltImage, compose_tmp: Path
) -> None:
    cert, _ = self_signed(compose_tmp / "certs", "registry.test")
    tls = trusting(cert)
    htpasswd(compose_tmp / "auth" / "htpasswd", "alice", "wonderland")
    env = {
        "DOCKYARD_IMAGE": dockyard_image.name,
        "DOCKYARD_HOST": "registry.test",
        "DOCKYARD_PUBLISH": f"127.0.0.1:{free_port()}",
        "DOCKYARD_CERTS": str(compose_tmp / "certs"),
        "DOCKYARD_AUTH": str(compose_tmp / "auth"),
    }
    files = [COMPOSE_DIR / "registry.yml"]
    compose = Compose(deploy_docker, "dyci-single", files, env)
    ref = "library/single:1"
    with Timer("compose (a): up, login, push, pull, down"):
        try:
            compose("up", "-d")
            host = f"{container_ip(deploy_docker, compose.container('registry'))}:5000"
            wait_for(lambda: httpx.get(f"https://{host}/v2/", verify=tls).status_code == 401, "registry")
            # Anonymous pulls of library/** only (the file's access rules): a push needs a login.
            assert httpx.get(f"https://{host}/token?scope=repository:library/x:pull", verify=tls).is_success
            deploy_docker("login", "-u", "alice", "-p", "wonderland", host)
            image = local_image(deploy_docker, compose_tmp, "single-src", "single")
            push_pull(deploy_docker, image, f"{host}/{ref}")
            deploy_docker("logout", host)
            deploy_docker("rmi", f"{host}/{ref}")
            deploy_docker("pull", f"{host}/{ref}")  # anonymous
        finally:
            compose.down()


@pytest.mark.builds
def test_single_registry_behind_accel_front(
    deploy_docker: Docker, dockyard_image: BuiltImage, standins: dict[str, str], compose_tmp: Path
) -> None:
    """registry.yml with registry-accel.yml: nginx takes the published port, dockyard authorizes
    each blob GET and nginx sends the file from the volume (its access log shows the internal
    location the request went to)."""
    cert, _ = self_signed(compose_tmp / "certs", "registry.test")
    tls = trusting(cert)
    htpasswd(compose_tmp / "auth" / "htpasswd", "alice", "wonderland")
    env = {
        "NGINX_IMAGE": standins["NGINX_IMAGE"],
        "DOCKYARD_IMAGE": dockyard_image.name,
        "DOCKYARD_HOST": "registry.test",
        "DOCKYARD_PUBLISH": f"127.0.0.1:{free_port()}",
        "DOCKYARD_CERTS": str(compose_tmp / "certs"),
        "DOCKYARD_AUTH": str(compose_tmp / "auth"),
    }
    files = [COMPOSE_DIR / "registry.yml", COMPOSE_DIR / "registry-accel.yml"]
    compose = Compose(deploy_docker, "dyci-accel", files, env)
    with Timer("compose (a) + accel front: up, login, push, pull, blob GET, down"):
        try:
            compose("up", "-d")
            address = container_ip(deploy_docker, compose.container("registry"))
            host = f"{address}:5000"
            wait_for(
                lambda: httpx.get(f"https://{host}/v2/", verify=tls).status_code == 401, "nginx + registry"
            )
            with pytest.raises(httpx.ConnectError):  # dockyard itself listens on loopback only
                httpx.get(f"http://{address}:5001/v2/", timeout=5)
            deploy_docker("login", "-u", "alice", "-p", "wonderland", host)
            image = local_image(deploy_docker, compose_tmp, "accel-src", "accel")
            image_id = deploy_docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
            push_pull(deploy_docker, image, f"{host}/library/accel:1")
            # No local copy left, so docker pull fetches the layer (through nginx's file path).
            deploy_docker("rmi", "-f", image_id)
            deploy_docker("pull", f"{host}/library/accel:1")
            assert (
                deploy_docker(
                    "image", "inspect", "--format", "{{.Id}}", f"{host}/library/accel:1"
                ).stdout.strip()
                == image_id
            )

            token = httpx.get(f"https://{host}/token?scope=repository:library/accel:pull", verify=tls)
            bearer = {"Authorization": f"Bearer {token.json()['token']}"}
            manifest = httpx.get(
                f"https://{host}/v2/library/accel/manifests/1", verify=tls,
                headers={**bearer, "Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            ).json()  # fmt: skip
            layer = manifest["layers"][0]
            blob = httpx.get(
                f"https://{host}/v2/library/accel/blobs/{layer['digest']}", verify=tls, headers=bearer
            )
            assert blob.status_code == 200, blob.text
            assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer["digest"]
            assert blob.headers["Docker-Content-Digest"] == layer["digest"]
            assert "X-Accel-Redirect" not in blob.headers
            internal = f"/_dockyard_blobs/docker/registry/v2/blobs/sha256/{layer['digest'][7:9]}/{layer['digest'][7:]}/data"
            assert httpx.get(f"https://{host}{internal}", verify=tls).status_code == 404  # internal only
            served = [
                line for line in compose("logs", "--no-color", "front").stdout.splitlines()
                if f"GET /v2/library/accel/blobs/{layer['digest']} " in line
            ]  # fmt: skip
            # docker pull's GET and this test's, each sent by nginx from the file.
            assert len(served) >= 2 and all(f" 200 {layer['size']} uri={internal}" in s for s in served), (
                served
            )
        finally:
            compose.down()


@pytest.mark.builds
def test_ha_survives_a_killed_replica(
    deploy_docker: Docker, dockyard_image: BuiltImage, standins: dict[str, str], compose_tmp: Path
) -> None:
    subnet = free_subnet()
    front = str(subnet.network_address + 10)
    cert, _ = self_signed(compose_tmp / "certs", front)
    tls = trusting(cert)
    htpasswd(compose_tmp / "auth" / "htpasswd", "alice", "wonderland")
    access, secret = "ci-access-key", "ci-secret-key-0123456789"
    s3 = {"identities": [{"name": "dockyard", "credentials": [{"accessKey": access, "secretKey": secret}],
                          "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}  # fmt: skip
    (compose_tmp / "s3.json").write_text(json.dumps(s3))
    env = {
        **standins,
        "DOCKYARD_IMAGE": dockyard_image.name,
        "DOCKYARD_HOST": front,
        "DOCKYARD_FRONT_IP": front,
        "DOCKYARD_SUBNET": str(subnet),
        "DOCKYARD_PUBLISH": f"127.0.0.1:{free_port()}",
        "DOCKYARD_S3_PUBLISH": f"127.0.0.1:{free_port()}",
        "DOCKYARD_CERTS": str(compose_tmp / "certs"),
        "DOCKYARD_AUTH": str(compose_tmp / "auth"),
        "DOCKYARD_S3_SKIPVERIFY": "true",  # the test's self-signed certificate on nginx's S3 port
        "SEAWEEDFS_S3_CONFIG": str(compose_tmp / "s3.json"),
        "POSTGRES_PASSWORD": "ci-postgres-password",
        "S3_ACCESS_KEY": access,
        "S3_SECRET_KEY": secret,
    }
    compose = Compose(deploy_docker, "dyci-ha", [COMPOSE_DIR / "ha.yml"], env)
    auth = ("alice", "wonderland")
    with Timer("compose (b): up, push, 307, pull loop with a kill, down"):
        try:
            compose("up", "-d")
            # Each replica first: nginx marks one that refused a connection down for 10 s, and
            # answers 502 while both are marked, which a single answer through it does not rule out.
            for replica in ("replica-1", "replica-2"):
                url = f"http://{container_ip(deploy_docker, compose.container(replica))}:5000/v2/"
                wait_for(lambda url=url: httpx.get(url, auth=auth).status_code == 200, replica, timeout=600)
            wait_for(lambda: httpx.get(f"https://{front}/v2/", verify=tls, auth=auth).status_code == 200,
                     "nginx in front of both replicas")  # fmt: skip
            deploy_docker("login", "-u", "alice", "-p", "wonderland", front)
            image = local_image(deploy_docker, compose_tmp, "ha-src", "ha")
            ref = f"{front}/team/ha:1"
            push_pull(deploy_docker, image, ref)

            # Blob GETs through nginx are redirects to nginx's S3 port, signed for it, and work.
            manifest = httpx.get(
                f"https://{front}/v2/team/ha/manifests/1", verify=tls, auth=auth,
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            ).json()  # fmt: skip
            layer = manifest["layers"][0]["digest"]
            blob = httpx.get(f"https://{front}/v2/team/ha/blobs/{layer}", verify=tls, auth=auth)
            assert blob.status_code == 307
            assert blob.headers["Location"].startswith(f"https://{front}:8443/")
            assert "X-Amz-Signature=" in blob.headers["Location"]
            fetched = httpx.get(blob.headers["Location"], verify=tls)
            assert fetched.status_code == 200 and len(fetched.content) == manifest["layers"][0]["size"]

            victim = compose.container("replica-1")
            pulls = 0
            for i in range(8):
                if i == 3:
                    deploy_docker("kill", victim)
                deploy_docker("rmi", ref)
                deploy_docker("pull", ref)
                pulls += 1
            assert pulls == 8
            survivor = compose.container("replica-2")
            assert json.loads(deploy_docker("inspect", survivor).stdout)[0]["State"]["Running"] is True
        finally:
            compose.down()
