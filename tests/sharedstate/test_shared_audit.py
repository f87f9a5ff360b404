"""The audit log under token auth with ``database.dsn``: each record names the account behind the
bearer token (a user or a robot), the robot's creation and revocation by ``dockyard token`` land
in the same table, and either replica answers for both; no token is ever in a record."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
import yaml

from dockyard.app import build_app
from dockyard.cli.main import main
from tests.api.helpers import push_image
from tests.sharedstate.conftest import SERVICE, USERS, Replica, ReplicaFactory, replica_config, token

pytestmark = pytest.mark.anyio
AUDIT = {"audit": {"enabled": True}}


def cli(tmp_path: Path, dsn: str, *argv: str) -> str:
    config = replica_config(tmp_path, "a", dsn, AUDIT).model_dump(mode="json", exclude_none=True)
    path = tmp_path / "a.yml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config))))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--config", str(path)]) == 0
    return out.getvalue()


def bearer(replica: Replica, value: str) -> httpx.AsyncClient:
    """A client of the replica's whole app (``build_app``: the request ids and actors the audit
    log reads are set by its outermost wrapper)."""
    transport = httpx.ASGITransport(app=build_app(replica.services), client=("10.0.0.7", 1234))
    client = httpx.AsyncClient(transport=transport, base_url=f"http://{SERVICE}")
    client.headers["Authorization"] = f"Bearer {value}"
    return client


async def test_records_name_the_token_holder_and_robots_made_by_the_cli(
    make_replica: ReplicaFactory, dsn: str, tmp_path: Path
) -> None:
    async with make_replica("a", dsn, AUDIT) as a, make_replica("b", dsn, AUDIT) as b:
        printed = await anyio.to_thread.run_sync(
            lambda: cli(tmp_path, dsn, "token", "create", "ci", "-r", "bob/**", "--actions", "pull,push")
        )
        secret = printed.split("token: ")[1].split()[0]
        robot = (await token(b.client, ("robot$ci", secret), "repository:bob/app:pull,push")).json()["token"]
        async with bearer(b, robot) as ci:
            await push_image(ci, "bob/app", "v1")
        scope = "repository:bob/app:pull,push,delete"
        bobs = (await token(a.client, ("bob", USERS["bob"]), scope)).json()["token"]
        async with bearer(a, bobs) as bob:
            assert (await bob.delete("/v2/bob/app/manifests/v1")).status_code == 202
        admin = (await token(a.client, ("alice", USERS["alice"]), "registry:admin:*")).json()["token"]
        async with bearer(a, admin) as alice:
            assert (await alice.delete("/admin/v1/repositories/bob/app")).status_code == 202
        await anyio.to_thread.run_sync(lambda: cli(tmp_path, dsn, "token", "revoke", "ci"))
        for replica in (a, b):
            assert replica.services.audit is not None
            await replica.services.audit.spool.drain()
        answers = []
        for replica in (a, b):
            async with bearer(replica, admin) as alice:
                answer = await alice.get("/admin/v1/audit")
                assert answer.status_code == 200, answer.text
                answers.append(answer.json()["records"])
    assert answers[0] == answers[1]
    changes = [
        (r["action"], r["actor"], r.get("repository") or r.get("robot"), r.get("tag"))
        for r in answers[0]
        if not r["action"].startswith("login")
    ]
    assert changes == [
        ("robot-create", "system", "ci", None),
        ("push", "robot$ci", "bob/app", "v1"),
        ("tag-delete", "bob", "bob/app", "v1"),
        ("repository-delete", "alice", "bob/app", None),
        ("robot-revoke", "system", "ci", None),
    ]
    dump = json.dumps(answers[0])
    for secret_value in (secret, robot, bobs, admin, *USERS.values()):
        assert secret_value not in dump
