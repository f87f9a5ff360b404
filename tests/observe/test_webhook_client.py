"""The webhook client honours the environment's proxies and ``.netrc`` as aiohttp's ``trust_env``
does, looked up once per endpoint URL (a real receiver on loopback plays the proxy)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import parse_config
from dockyard.notify import http
from dockyard.notify.http import WebhookClient, route_for
from dockyard.notify.spool import Record
from tests.observe.receiver import Receiver
from tests.servers.dockyard import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Any:
    """Up from the start (``test_delivery``'s starts down)."""
    r = Receiver(free_port())
    r.start()
    yield r
    r.stop()


def endpoint(url: str) -> Any:
    return parse_config(
        {"notifications": {"endpoints": [{"name": "h", "url": url}]}}
    ).notifications.endpoints[0]


def record() -> Record:
    return Record.of(
        (1, 1, 0), "library/a", {"id": "1", "action": "pull", "target": {"repository": "library/a"}}
    )


async def test_posts_go_through_the_environments_proxy_once_looked_up(
    receiver: Receiver, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://pu:pp@127.0.0.1:{receiver.port}")
    looked_up: list[str] = []

    def counted(url: str) -> http.Route:
        looked_up.append(url)
        return route_for(url)

    monkeypatch.setattr(http, "route_for", counted)
    client = WebhookClient()
    try:
        hook = endpoint("http://hooks.invalid/events")  # resolvable only by the proxy
        for _ in range(3):
            assert await client.post(hook, [record().raw]) is None
    finally:
        await client.aclose()
    assert receiver.targets == ["http://hooks.invalid/events"] * 3
    proxy_auth = "Basic " + base64.b64encode(b"pu:pp").decode()
    assert [h.get("proxy-authorization") for h, _ in receiver.envelopes] == [proxy_auth] * 3
    assert looked_up == ["http://hooks.invalid/events"]


async def test_no_proxy_and_netrc(
    receiver: Receiver, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    clean_env.write_text("machine 127.0.0.1 login hook password s3cret\n")
    client = WebhookClient()
    try:
        assert await client.post(endpoint(f"http://127.0.0.1:{receiver.port}/events"), [record().raw]) is None
        with_user = endpoint(f"http://me:pw@127.0.0.1:{receiver.port}/events")
        assert await client.post(with_user, [record().raw]) is None
        own = parse_config(
            {
                "notifications": {
                    "endpoints": [
                        {
                            "name": "h",
                            "url": f"http://127.0.0.1:{receiver.port}/events",
                            "headers": {"Authorization": ["Bearer t"]},
                        }
                    ]
                }
            }
        ).notifications.endpoints[0]
        assert await client.post(own, [record().raw]) is None  # the endpoint's own header wins
    finally:
        await client.aclose()
    assert receiver.targets == ["/events"] * 3
    auths = [headers.get("authorization") for headers, _ in receiver.envelopes]
    assert auths == [
        "Basic " + base64.b64encode(b"hook:s3cret").decode(),
        "Basic " + base64.b64encode(b"me:pw").decode(),
        "Bearer t",
    ]


def test_no_environment_means_a_direct_route(clean_env: Path) -> None:
    assert route_for("https://hooks.example/x") == http.Route()
