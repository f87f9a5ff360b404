"""With ``database.dsn``, two replicas on one store act as one registry for accounts: robots,
failed-login throttling, the token server's signing keys (and their rotation) and UI sessions."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import anyio.to_thread
import httpx
import jwt
import pytest
import yaml

from dockyard.cli.main import main
from dockyard.storage import paths
from tests.api.helpers import push_image
from tests.sharedstate.conftest import USERS, ReplicaFactory, csrf_of, replica_config, token

pytestmark = pytest.mark.anyio


def cli(tmp_path: Path, machine: str, dsn: str, *argv: str) -> str:
    """``dockyard <argv> --config <that machine's configuration>``; returns what it printed."""
    config = replica_config(tmp_path, machine, dsn, None).model_dump(mode="json", exclude_none=True)
    path = tmp_path / f"{machine}.yml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config))))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--config", str(path)]) == 0
    return out.getvalue()


async def run_cli(tmp_path: Path, machine: str, dsn: str, *argv: str) -> str:
    return await anyio.to_thread.run_sync(lambda: cli(tmp_path, machine, dsn, *argv))


async def test_a_robot_made_on_one_replica_logs_in_on_another(
    make_replica: ReplicaFactory, dsn: str, tmp_path: Path
) -> None:
    async with make_replica("a", dsn) as a, make_replica("b", dsn) as b:
        printed = await run_cli(
            tmp_path, "a", dsn, "token", "create", "ci", "-r", "bob/**", "--actions", "pull,push"
        )
        secret = printed.split("token: ")[1].split()[0]
        # b's rules know the robot (not only its token) before it ever logged in there: its
        # catalog lists what it may pull.
        bob = (await token(a.client, ("bob", USERS["bob"]), "repository:bob/app:pull,push")).json()["token"]
        bobs = httpx.AsyncClient(transport=a.client._transport, base_url=str(a.client.base_url))
        bobs.headers["Authorization"] = f"Bearer {bob}"
        async with bobs:
            await push_image(bobs, "bob/app", "v1")
        listing = (await token(a.client, ("robot$ci", secret), "registry:catalog:*")).json()["token"]
        r = await b.client.get("/v2/_catalog", headers={"Authorization": f"Bearer {listing}"})
        assert r.status_code == 200 and r.json()["repositories"] == ["bob/app"], r.text
        r = await token(b.client, ("robot$ci", secret), "repository:bob/app:push")
        assert r.status_code == 200, r.text
        claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
        assert claims["sub"] == "robot$ci" and claims["access"][0]["actions"] == ["push"]
        assert not (a.machine / "robots.json").exists()  # in the database, not on machine a
        await run_cli(tmp_path, "b", dsn, "token", "revoke", "ci")
        assert (await token(a.client, ("robot$ci", secret), "repository:bob/app:pull")).status_code == 401
        listed = await run_cli(tmp_path, "a", dsn, "token", "list")
        assert "ci" in listed and "revoked" in listed


async def test_failed_logins_on_both_replicas_count_together(make_replica: ReplicaFactory, dsn: str) -> None:
    async with make_replica("a", dsn) as a, make_replica("b", dsn) as b:
        assert (await token(a.client, ("bob", "wrong"))).status_code == 401
        assert (await token(b.client, ("bob", "wrong"))).status_code == 401
        assert (await token(a.client, ("bob", "wrong"))).status_code == 401
        # Three failures in the window (attempts: 3), two of them on a: b refuses the right password.
        blocked = await token(b.client, ("bob", USERS["bob"]))
        assert blocked.status_code == 429, blocked.text
        assert 0 < int(blocked.headers["Retry-After"]) <= 30
        # The address is over the limit too, on both replicas, whichever account it names.
        assert (await token(a.client, ("alice", USERS["alice"]))).status_code == 429


async def test_tokens_from_one_replica_pass_on_another_across_a_rotation(
    make_replica: ReplicaFactory, dsn: str, tmp_path: Path
) -> None:
    async with make_replica("a", dsn) as a, make_replica("b", dsn) as b:
        scope = "repository:bob/app:pull"
        old = (await token(a.client, ("bob", USERS["bob"]), scope)).json()["token"]

        async def status(replica_client: object, bearer: str) -> int:
            r = await replica_client.get(
                "/v2/bob/app/tags/list", headers={"Authorization": f"Bearer {bearer}"}
            )  # type: ignore[attr-defined]
            return int(r.status_code)

        assert await status(b.client, old) == 404  # accepted: the repository does not exist
        await run_cli(tmp_path, "b", dsn, "token", "rotate-key")
        for replica in (a, b):
            replica.clock.now += 1.1  # the controllers look at the keys again after a second
        new = (await token(a.client, ("bob", USERS["bob"]), scope)).json()["token"]
        assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
        assert await status(b.client, new) == 404
        assert await status(b.client, old) == 404  # the retired key validates until its tokens expire
        assert await status(a.client, old) == 404
        kids = {k["kid"] for k in (await b.client.get("/token/jwks.json")).json()["keys"]}
        assert kids == {jwt.get_unverified_header(t)["kid"] for t in (old, new)}
        assert (await a.client.get("/token/certs.pem")).text.count("BEGIN CERTIFICATE") == 2
        assert not (a.machine / "keys").exists() and not (b.machine / "keys").exists()


async def test_a_ui_session_from_one_replica_holds_on_another(
    make_replica: ReplicaFactory, dsn: str, tmp_path: Path
) -> None:
    async with make_replica("a", dsn) as a, make_replica("b", dsn) as b:
        login = await a.client.get("/ui/login")
        csrf = csrf_of(login.text)
        r = await a.client.post("/ui/login", data={"username": "bob", "password": USERS["bob"], "csrf": csrf})
        assert r.status_code == 303, r.text
        session = a.client.cookies.get("dockyard_session")
        assert session
        b.client.cookies.set("dockyard_session", session)
        assert ">bob<" in (await b.client.get("/")).text
        # The key is in the database, not left in the store for anyone who can read the bucket.
        relative = paths.UI_SESSION_KEY.lstrip("/")
        assert not (tmp_path / "store" / relative).exists()
