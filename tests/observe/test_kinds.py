"""dockyard's own event kinds reach the webhooks and the audit log, through the whole app.

A quota's warning threshold crossed by a push, a retention run, a repository deleted, a
collection that freed bytes and a finished scan: each reaches a real receiver on loopback as its
own ``action`` in distribution's envelope and as its own CloudEvents ``type``; an endpoint that
ignores those actions gets distribution's four kinds alone, shaped exactly as before. The audit
log answers who applied retention and who deleted the repository, and ``dockyard token`` records
robot accounts made and revoked, never their token.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

from dockyard.cli.main import main
from dockyard.notify.envelope import DISTRIBUTION_ACTIONS, DOCKYARD_ACTIONS
from tests.observe.conftest import AppFactory, make_services
from tests.observe.receiver import Receiver
from tests.servers.dockyard import free_port

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
# Not an image config: the scanner records such a manifest as skipped without running Syft.
ARTIFACT_CONFIG = "application/vnd.dockyard.test.config+json"
PASSWORD = "alice-secret-pw"
ALICE = {"Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(config: bytes, layers: list[bytes], n: int) -> bytes:
    def ref(media_type: str, data: bytes) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": sha(data), "size": len(data)}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": ref(ARTIFACT_CONFIG, config),
            "layers": [ref("application/octet-stream", layer) for layer in layers],
            "annotations": {"n": str(n)},
        }
    ).encode()


def hooks(ce: Receiver, everything: Receiver, classic: Receiver) -> list[dict[str, Any]]:
    return [
        {"name": "ce", "url": f"http://127.0.0.1:{ce.port}/", "format": "cloudevents"},
        {"name": "all", "url": f"http://127.0.0.1:{everything.port}/"},
        {
            "name": "classic",
            "url": f"http://127.0.0.1:{classic.port}/",
            "ignore": {"actions": list(DOCKYARD_ACTIONS)},
        },
    ]


async def test_each_kind_reaches_webhooks_in_both_formats_and_the_audit_log(
    make_client: AppFactory, tmp_path: Path
) -> None:
    receivers = ce, everything, classic = Receiver(free_port()), Receiver(free_port()), Receiver(free_port())
    users = tmp_path / "htpasswd"
    users.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    services = make_services(
        tmp_path,
        {
            "auth": {"htpasswd": {"path": str(users)}},
            "audit": {"enabled": True},
            "notifications": {"endpoints": hooks(ce, everything, classic)},
            "quotas": [{"repositories": "team/**", "limit": 1000, "warning": 50}],
            "storage": {"maintenance": {"gc": {"grace": "0s"}}},
            "scan": {"enabled": True},
        },
    )
    config, big, small, gone = b'{"n":1}', b"b" * 600, b"s" * 50, b"g" * 70
    async with make_client(services=services) as client:

        async def blob(repository: str, data: bytes) -> None:
            answer = await client.post(
                f"/v2/{repository}/blobs/uploads/?digest={sha(data)}", content=data, headers=ALICE
            )
            assert answer.status_code == 201, answer.text

        async def put(repository: str, tag: str, body: bytes) -> None:
            headers = {**ALICE, "Content-Type": OCI}
            answer = await client.put(f"/v2/{repository}/manifests/{tag}", content=body, headers=headers)
            assert answer.status_code == 201, answer.text

        for data in (config, big, small):  # 7 + 600 bytes cross 50 % of 1000; the next 50 do not
            await blob("team/app", data)
        await put("team/app", "v1", manifest(config, [big], 1))
        await put("team/app", "v2", manifest(config, [small], 2))
        for data in (config, gone):
            await blob("old/x", data)
        await put("old/x", "v1", manifest(config, [gone], 3))
        retention = await client.post(
            "/admin/v1/retention", json={"policies": [{"repositories": "team/**", "keep": 1}]}, headers=ALICE
        )
        assert retention.status_code == 200 and len(retention.json()["deleted"]) == 1, retention.text
        assert (await client.delete("/admin/v1/repositories/old/x", headers=ALICE)).status_code == 202
        # A minute passes on the coordinator's clock: what was pushed is past the collection's slack.
        coordinator: Any = services.coordinator
        clock = coordinator.clock
        coordinator.clock = lambda: clock() + 60.0
        collected = await client.post("/admin/v1/gc", json={}, headers=ALICE)
        assert collected.status_code == 200 and collected.json()["bytes_freed"] > 0, collected.text
        assert services.scans is not None and await services.scans.drain() == 3
        assert services.notifier is not None and services.audit is not None
        await services.notifier.spool.drain()
        await services.audit.spool.drain()
        audit = await client.get("/admin/v1/audit", headers=ALICE)
    for receiver in receivers:
        receiver.start()
    deliverer: Any = services.notifier.deliverer
    try:
        for _ in range(100):
            if not await deliverer.step():
                break
    finally:
        await deliverer.stop()
        for receiver in receivers:
            receiver.stop()

    events = everything.events()
    own = [e for e in events if e["action"] in DOCKYARD_ACTIONS]
    assert [e["action"] for e in own] == [
        "quota-warning",
        "retention",
        "repository-delete",
        "gc",
        "scan",
        "scan",
        "scan",
    ]
    warning, applied, deleted, gc, *scans = own
    assert warning["target"] == {"repository": "team/app"}
    assert warning["quota"] == {"repositories": "team/**", "limit": 1000, "warning": 500, "used": 607}
    assert applied["target"] == {"repository": "team/app"}
    [gone_tag] = applied["retention"]["deleted"]
    assert gone_tag["tag"] == "v1" and gone_tag["digest"] == sha(manifest(config, [big], 1))
    assert "most recently pushed" in gone_tag["rule"] and applied["retention"]["untagged"] == []
    assert deleted["target"] == {"repository": "old/x"} and deleted["actor"] == {"name": "alice"}
    assert gc["target"] == {} and gc["gc"]["bytesFreed"] == collected.json()["bytes_freed"]
    assert gc["gc"]["blobsDeleted"] >= 1 and gc["actor"] == {"name": "alice"}
    # Two artifacts scanned (skipped: not images), and one deleted before its turn.
    assert sorted((s["target"]["repository"], s["scan"]["state"], s["scan"]["counts"]) for s in scans) == [
        ("old/x", "gone", None),
        ("team/app", "skipped", None),
        ("team/app", "skipped", None),
    ]
    # The retention's tag deletion is distribution's own delete, before its summary.
    deletes = [e for e in events if e["action"] == "delete"]
    assert [e["target"] for e in deletes] == [{"tag": "v1", "repository": "team/app"}]
    assert events.index(deletes[0]) < events.index(applied)

    # The endpoint ignoring dockyard's kinds hears distribution's four alone, the same events.
    plain = classic.events()
    assert {e["action"] for e in plain} <= set(DISTRIBUTION_ACTIONS)
    assert plain == [e for e in events if e["action"] in DISTRIBUTION_ACTIONS]

    # CloudEvents: one type per kind; a collection has no subject.
    parsed = [from_http(HTTPMessage(headers=h, body=c), JSONFormat()) for h, c in ce.envelopes]
    kinds = [(e.get_type(), e.get_subject()) for e in parsed if e.get_type() != "io.dockyard.push"]
    assert kinds == [
        ("io.dockyard.quota-warning", "team/app"),
        ("io.dockyard.delete", "team/app:v1"),
        ("io.dockyard.retention", "team/app"),
        ("io.dockyard.repository-delete", "old/x"),
        ("io.dockyard.gc", None),
        *kinds[5:],  # the three scans, checked below
    ]
    assert {kind for kind, _ in kinds[5:]} == {"io.dockyard.scan"}
    assert [e.get_id() for e in parsed] == [e["id"] for e in events]

    records = audit.json()["records"]
    mine = [(r["action"], r["actor"], r.get("repository")) for r in records]
    assert ("retention", "alice", "team/app") in mine
    assert ("repository-delete", "alice", "old/x") in mine
    assert ("gc", "alice", None) in mine
    [kept] = [r for r in records if r["action"] == "retention"]
    assert [d["tag"] for d in kept["deleted"]] == ["v1"] and kept["requestId"]
    assert PASSWORD not in json.dumps(records)


def test_robot_accounts_made_and_revoked_are_audited_without_their_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root")}},
                "auth": {"robots": {"path": str(tmp_path / "robots.json")}},
                "audit": {"enabled": True},
                "ui": {"enabled": False},
            }
        )
    )
    assert (
        main(["token", "create", "ci", "-r", "team/**", "--actions", "pull,push", "--config", str(path)]) == 0
    )
    token = capsys.readouterr().out.split("token: ")[1].split()[0]
    assert main(["token", "revoke", "ci", "--config", str(path)]) == 0
    assert main(["token", "revoke", "ci", "--config", str(path)]) == 1  # nothing revoked: no record
    day = next((tmp_path / "root").rglob("_dockyard/audit/*"))
    records = [json.loads(line)["e"] for f in sorted(day.iterdir()) for line in f.read_text().splitlines()]
    assert [(r["action"], r["robot"], r["actor"]) for r in records] == [
        ("robot-create", "ci", "system"),
        ("robot-revoke", "ci", "system"),
    ]
    assert records[0]["repositories"] == ["team/**"] and records[0]["actions"] == ["pull", "push"]
    assert records[0]["expires"].endswith("Z") and records[0]["osUser"]
    assert token.startswith("dyt_") and token not in json.dumps(records)


def test_distributions_four_kinds_keep_their_exact_bytes() -> None:
    """The JSON (key order included) main sent before dockyard's own kinds were added."""
    from dockyard.events import BlobPushed, ManifestDeleted, ManifestPulled, ManifestPushed, TagDeleted
    from dockyard.events.request import RequestInfo
    from dockyard.notify.envelope import describe

    digest = "sha256:" + "a" * 64
    request = RequestInfo("req-1", "10.0.0.1:5555", "registry.test", "PUT", "docker/24", actor="alice")
    source = {"addr": "host:5000", "instanceID": "i-1"}
    asked = {"id": "req-1", "addr": "10.0.0.1:5555", "host": "registry.test", "method": "PUT"}
    asked["useragent"] = "docker/24"
    blob = {"mediaType": "application/octet-stream", "size": 3, "digest": digest, "length": 3}
    blob["url"] = f"https://reg/v2/r/a/blobs/{digest}"
    pushed = {"mediaType": OCI, "size": 10, "digest": digest, "length": 10}
    pushed["url"] = f"https://reg/v2/r/a/manifests/{digest}"
    cases = [
        (BlobPushed("r/a", digest, 3), "push", {**blob, "repository": "r/a"}),
        (BlobPushed("r/a", digest, 3, mounted=True), "mount", {**blob, "repository": "r/a"}),
        (ManifestPushed("r/a", digest, OCI, "v1", 10), "push", {**pushed, "tag": "v1", "repository": "r/a"}),
        (ManifestPulled("r/a", digest, "v1", OCI, 10), "pull", {**pushed, "tag": "v1", "repository": "r/a"}),
        (ManifestDeleted("r/a", digest), "delete", {"digest": digest, "repository": "r/a"}),
        (TagDeleted("r/a", "v1"), "delete", {"tag": "v1", "repository": "r/a"}),
    ]
    for event, action, target in cases:
        out = describe(event, request, source, "https://reg")
        assert out is not None
        expected = {"id": out["id"], "timestamp": out["timestamp"], "action": action, "target": target}
        expected |= {"request": asked, "actor": {"name": "alice"}, "source": source}
        assert json.dumps(out) == json.dumps(expected)


async def test_a_push_that_moves_a_tag_is_audited_as_a_tag_move(
    make_client: AppFactory, tmp_path: Path
) -> None:
    services = make_services(tmp_path, {"audit": {"enabled": True}})
    config = b'{"n":2}'
    first, second = manifest(config, [], 1), manifest(config, [], 2)
    async with make_client(services=services) as client:
        post = await client.post(f"/v2/app/blobs/uploads/?digest={sha(config)}", content=config)
        assert post.status_code == 201
        for body in (first, first, second):  # new, the same again, then moved
            put = await client.put("/v2/app/manifests/v1", content=body, headers={"Content-Type": OCI})
            assert put.status_code == 201
        put = await client.put(f"/v2/app/manifests/{sha(first)}?tag=v2&tag=v1", content=first)
        assert put.status_code == 201
        assert services.audit is not None
        await services.audit.spool.drain()
        records = (await client.get("/admin/v1/audit", params={"repository": "app"})).json()["records"]
    assert [(r["action"], r["tag"], r["digest"], r.get("previous")) for r in records] == [
        ("push", "v1", sha(first), None),
        ("push", "v1", sha(first), None),
        ("tag-move", "v1", sha(second), sha(first)),
        ("push", "v2", sha(first), None),
        ("tag-move", "v1", sha(first), sha(second)),
    ]
