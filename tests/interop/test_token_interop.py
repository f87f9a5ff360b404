"""distribution 2.8.2 (Debian docker-registry) trusting dockyard's token server.

distribution is configured with ``auth.token`` pointing at dockyard's ``/token`` realm and
dockyard's certificate bundle as ``rootcertbundle``; docker logs in (tokens from dockyard) and
pushes and pulls through distribution.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.live import USERS, AuthRegistry, auth_registry
from tests.clients.conftest import Docker, docker, make_image  # noqa: F401 - the dockerd fixture
from tests.clients.images import write_docker_archive
from tests.interop.distribution import DistributionRegistry

pytestmark = pytest.mark.interop


class TokenDistribution(DistributionRegistry):
    """Ready when ``/v2/`` answers 401 with a Bearer challenge."""

    ready_statuses = (401,)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    live = auth_registry(tmp_path_factory.mktemp("issuer"), "token").start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def distribution(
    issuer: AuthRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenDistribution]:
    dist = TokenDistribution(tmp_path_factory.mktemp("distribution"))
    token = issuer.config["auth"]["token"]
    dist.config["auth"] = {
        "token": {
            "realm": f"{issuer.url}/token",
            "service": token["service"],
            "issuer": token["issuer"],
            "rootcertbundle": str(Path(token["server"]["keys"]) / "bundle.pem"),
        }
    }
    dist.start()
    try:
        yield dist
    finally:
        dist.stop()


def test_challenge_points_at_dockyard(distribution: TokenDistribution, issuer: AuthRegistry) -> None:
    resp = httpx.get(f"{distribution.url}/v2/bob/app/tags/list")
    assert resp.status_code == 401
    assert f'realm="{issuer.url}/token"' in resp.headers["WWW-Authenticate"]


def test_docker_push_pull_through_distribution(
    docker: Docker,  # noqa: F811
    distribution: TokenDistribution,
    issuer: AuthRegistry,
    tmp_path: Path,
) -> None:
    host = distribution.host
    ref, other = f"{host}/bob/interop:v1", f"{host}/team-x/interop:v1"
    archive = write_docker_archive(
        tmp_path / "image.tar", make_image("token interop"), "dockyard-tests/interop:src"
    )
    docker("load", "-i", archive)
    docker("tag", "dockyard-tests/interop:src", ref)
    docker("tag", "dockyard-tests/interop:src", other)

    docker("login", "-u", "bob", "-p", USERS["bob"], host)
    out = docker("push", ref).stdout
    assert "digest: sha256:" in out
    docker("rmi", ref)
    assert "Downloaded newer image" in docker("pull", ref).stdout
    # dockyard's token grants only bob/**; distribution enforces the token's access claim.
    assert docker("push", other, check=False).returncode != 0
    docker("logout", host)
    assert (distribution.root / "docker/registry/v2/repositories/bob/interop/_manifests").is_dir()

    # A token straight from dockyard is accepted by distribution; a tampered one is not.
    tok = httpx.get(
        f"{issuer.url}/token",
        params={"service": "dockyard-test", "scope": "repository:bob/interop:pull"},
        auth=("bob", USERS["bob"]),
    ).json()["token"]
    tags = httpx.get(
        f"{distribution.url}/v2/bob/interop/tags/list", headers={"Authorization": f"Bearer {tok}"}
    )
    assert tags.status_code == 200 and tags.json()["tags"] == ["v1"]
    head, payload, sig = tok.split(".")
    tampered = f"{head}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    bad = httpx.get(
        f"{distribution.url}/v2/bob/interop/tags/list", headers={"Authorization": f"Bearer {tampered}"}
    )
    assert bad.status_code == 401
