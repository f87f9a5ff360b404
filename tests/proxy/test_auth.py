"""Upstream authentication: the Docker token flow (anonymous and with credentials) against a
dockyard in token mode, Basic against one with htpasswd, tokens cached per scope; credentials
from the environment or a file, never in the configuration's repr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.client import RegistryAuth
from dockyard.config import Credentials, parse_config
from tests.proxy.conftest import Proxy, Upstream
from tests.proxy.images import push
from tests.proxy.test_pull import pull

pytestmark = pytest.mark.anyio


def users(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    HtpasswdFile(path).set_password("mirror", "s3cret", cost=4, create=True)
    return path


def auth(tmp_path: Path, mode: str, *, anonymous_pull: bool = False) -> dict[str, object]:
    rules: list[dict[str, object]] = [{"repositories": ["**"], "actions": ["*"], "users": ["mirror"]}]
    if anonymous_pull:
        rules.append({"repositories": ["public/**"], "actions": ["pull"], "anonymous": True})
    section: dict[str, object] = {
        "htpasswd": {"realm": "up", "path": str(users(tmp_path))},
        "access": {"rules": rules},
        "robots": {"path": str(tmp_path / "robots.json")},
    }
    if mode == "token":
        section["token"] = {
            "service": "up",
            "issuer": "up",
            "server": {"enabled": True, "keys": str(tmp_path / "k")},
        }
    return {"auth": section}


@pytest.mark.parametrize("mode", ["token", "htpasswd"])
async def test_credentials_from_a_file_and_tokens_cached_per_scope(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy], tmp_path: Path, mode: str
) -> None:
    up = make_upstream(auth(tmp_path, mode))
    async with up.client() as c:
        c.auth = RegistryAuth("mirror", "s3cret")
        image = await push(c, "org/app", "1", seed="a")
        other = await push(c, "org/other", "1", seed="o")
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    creds = {"credentials": {"username": "mirror", "passwordfile": str(secret)}}
    proxy = make_proxy({"ghcr.io": (up, creds)})
    assert await pull(proxy, "ghcr.io/org/app", "1") == {image.digest: image.manifest, **image.blobs}
    client = proxy.services.model.router.upstreams[0]  # type: ignore[attr-defined]
    if mode == "token":
        assert client.auth.token_requests == 1  # one token for repository:org/app:pull, reused
        await pull(proxy, "ghcr.io/org/other", "1")
        assert client.auth.token_requests == 2  # another scope, another token
        proxy.clock.advance(3600)  # past the token's expiry
        r = await proxy.client.get(f"/v2/ghcr.io/org/other/manifests/{other.digest}")
        assert r.status_code == 200
        assert client.auth.token_requests == 2  # cached manifest: the upstream was not asked
        await proxy.services.registry.delete_repository("ghcr.io/org/other")
        await pull(proxy, "ghcr.io/org/other", "1")
        assert client.auth.token_requests == 3  # expired: fetched anew
    else:
        assert client.auth.basic and client.auth.token_requests == 0


async def test_anonymous_token_flow(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy], tmp_path: Path
) -> None:
    up = make_upstream(auth(tmp_path, "token", anonymous_pull=True))
    async with up.client() as c:
        c.auth = RegistryAuth("mirror", "s3cret")
        image = await push(c, "public/tool", "1", seed="p")
    proxy = make_proxy({"quay.io": (up, {})})
    assert await pull(proxy, "quay.io/public/tool", "1") == {image.digest: image.manifest, **image.blobs}
    # Without credentials a private repository upstream is a failure named with its answer.
    async with up.client() as c:
        c.auth = RegistryAuth("mirror", "s3cret")
        await push(c, "private/x", "1", seed="x", sizes=(10,))
    r = await proxy.client.get("/v2/quay.io/private/x/manifests/1")
    assert r.status_code == 502 and "HTTP 401" in r.text


def test_credentials_from_the_environment_never_in_repr() -> None:
    creds = Credentials(username="u", passwordenv="MIRROR_PASSWORD")
    assert creds.secret({"MIRROR_PASSWORD": "from-env"}) == "from-env"
    config = parse_config(
        {"proxy": {"remoteurl": "https://registry-1.docker.io", "username": "u", "password": "hunter2"}}
    )
    assert "hunter2" not in repr(config)
    (whole,) = config.proxy.all_upstreams()
    assert whole.prefix == "" and whole.credentials.secret() == "hunter2"
    assert "hunter2" not in repr(whole)


async def test_rate_limit_headers_are_recorded_and_warned_of(
    make_upstream: Callable[..., Upstream], make_proxy: Callable[..., Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    up = make_upstream()
    async with up.client() as c:
        await push(c, "library/rl", "1", seed="rl", sizes=(10,))
    up.headers = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "1;w=21600"}
    proxy = make_proxy({"docker.io": (up, {})})
    await pull(proxy, "docker.io/library/rl", "1")
    client = proxy.services.model.router.upstreams[0]  # type: ignore[attr-defined]
    assert (client.ratelimit.limit, client.ratelimit.remaining) == ("100;w=21600", "1;w=21600")
    assert client.ratelimit.seen_at == proxy.clock.now
    assert any("pull limit nearly used up" in r.getMessage() for r in caplog.records)
