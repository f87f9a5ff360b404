"""With ``database.dsn``, a quota counts what every replica stored: filled through one replica, it
refuses a push through another at once (not after the other's cache expires)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.sharedstate.conftest import ReplicaFactory

pytestmark = pytest.mark.anyio
QUOTA = {"quotas": [{"repositories": "team/**", "limit": 3000}]}


async def push_blob(client: httpx.AsyncClient, repo: str, data: bytes) -> httpx.Response:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)


async def test_a_quota_filled_through_one_replica_refuses_a_push_through_another(
    make_replica: ReplicaFactory, dsn: str
) -> None:
    async with make_replica("a", dsn, QUOTA, auth=False) as a, make_replica("b", dsn, QUOTA, auth=False) as b:
        assert (await push_blob(b.client, "team/app", b"b" * 1000)).status_code == 201  # b counts
        assert (await push_blob(a.client, "team/app", b"a" * 1900)).status_code == 201  # 2900 used
        refused = await push_blob(b.client, "team/app", b"c" * 200)
        assert refused.status_code == 403, refused.text
        assert refused.json()["errors"][0]["code"] == "DENIED"
        # A blob already counted is no new usage, through either replica.
        assert (await push_blob(b.client, "team/app", b"a" * 1900)).status_code == 201
        assert (await push_blob(a.client, "team/app", b"d" * 100)).status_code == 201  # fits: 3000


class Heard:
    """A subscriber that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def emit(self, event: object) -> None:
        self.events.append(event)


async def test_a_warning_threshold_crossed_through_either_replica_is_told_once(
    make_replica: ReplicaFactory, dsn: str
) -> None:
    from dockyard.events import QuotaWarning

    warned = {"quotas": [{"repositories": "team/**", "limit": 3000, "warning": 50}]}
    async with (
        make_replica("a", dsn, warned, auth=False) as a,
        make_replica("b", dsn, warned, auth=False) as b,
    ):
        heard = Heard()
        for replica in (a, b):
            assert replica.services.registry.quotas is not None
            replica.services.registry.quotas.events = heard
        assert (await push_blob(b.client, "team/app", b"b" * 1000)).status_code == 201  # 1000 < 1500
        assert heard.events == []
        assert (await push_blob(a.client, "team/app", b"a" * 900)).status_code == 201  # 1900: crossed
        assert (await push_blob(b.client, "team/app", b"c" * 100)).status_code == 201  # above already
        assert (await push_blob(b.client, "team/app", b"a" * 900)).status_code == 201  # counted already
        assert heard.events == [QuotaWarning("team/app", "team/**", 3000, 1500, 1900)]
