"""The audit log: the actions produce records with the right actor, queryable, without secrets."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import bcrypt
import pytest

from tests.observe.conftest import AppFactory, make_services

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
PASSWORDS = {"alice": "alice-secret-pw", "bob": "bob-secret-pw"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_changes_and_logins_are_recorded_with_their_actor(
    make_client: AppFactory, tmp_path: Path
) -> None:
    users = tmp_path / "htpasswd"
    users.write_text(
        "".join(
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
            for u, p in PASSWORDS.items()
        )
    )
    services = make_services(
        tmp_path, {"auth": {"htpasswd": {"path": str(users)}}, "audit": {"enabled": True}}
    )
    alice, bob = basic("alice", PASSWORDS["alice"]), basic("bob", PASSWORDS["bob"])
    config = b'{"os":"linux"}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    async with make_client(services=services) as client:
        assert (
            await client.post(f"/v2/app/blobs/uploads/?digest={digest}", content=config, headers=alice)
        ).status_code == 201
        put = await client.put(
            "/v2/app/manifests/v1",
            content=manifest,
            headers={**alice, "Content-Type": OCI, "X-Request-Id": "push-1"},
        )
        assert put.status_code == 201
        assert (await client.delete("/v2/app/manifests/v1", headers=bob)).status_code == 202
        assert (await client.get("/v2/", headers=basic("mallory", "guess-pw"))).status_code == 401
        assert (await client.post("/admin/v1/gc", json={"dryRun": True}, headers=alice)).status_code == 200
        assert services.audit is not None
        await services.audit.spool.drain()

        async def records(**params: str) -> list[dict[str, object]]:
            answer = await client.get("/admin/v1/audit", params=params, headers=alice)
            assert answer.status_code == 200, answer.text
            found: list[dict[str, object]] = answer.json()["records"]
            return found

        everything = await records()
        in_app = await records(repository="app")
        by_bob = await records(actor="bob")
        failed = await records(action="login-failed")
        recent = await records(since="1h")
        future = await records(since="2999-01-01T00:00:00Z")
        bad = await client.get("/admin/v1/audit", params={"since": "yesterday"}, headers=alice)
    assert bad.status_code == 400
    assert [(r["action"], r["actor"], r.get("tag")) for r in in_app] == [
        ("push", "alice", "v1"),
        ("tag-delete", "bob", "v1"),
    ]
    assert in_app[0]["requestId"] == "push-1" and in_app[0]["digest"].startswith("sha256:")  # type: ignore[union-attr]
    assert [r["action"] for r in by_bob] == ["login", "tag-delete"]
    assert [(r["actor"], r["client"].startswith("127.0.0.1")) for r in failed] == [("mallory", True)]  # type: ignore[union-attr]
    gc = [r for r in everything if r["action"] == "gc-dry-run"]
    assert len(gc) == 1 and gc[0]["actor"] == "alice" and "bytesFreed" in gc[0]
    logins = [r for r in everything if r["action"] == "login"]
    assert sorted(str(r["actor"]) for r in logins) == ["alice", "bob"]  # once each, not per request
    assert recent == everything and future == []
    dump = json.dumps(everything)
    for secret in (*PASSWORDS.values(), "guess-pw"):
        assert secret not in dump


async def test_days_past_the_retention_are_deleted(tmp_path: Path) -> None:
    from dockyard.audit.log import AuditLog
    from dockyard.events import TagDeleted

    services = make_services(tmp_path, {"audit": {"enabled": True, "retention": "48h"}})
    now = [1_700_000_000 * 10**9]
    log = AuditLog(services.driver, 48 * 3600, clock=lambda: now[0])
    for _ in range(5):  # one record a day for five days
        log.emit(TagDeleted("app", "old"))
        await log.spool.drain()
        now[0] += 86400 * 10**9
    now[0] -= 86400 * 10**9
    await log.prune()  # also done on each new day's first record, in the background
    assert await log.days() == ["2023-11-16", "2023-11-17", "2023-11-18"]  # the cutoff is now - 48 h
    assert await log.prune() == 0
