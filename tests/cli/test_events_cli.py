"""``dockyard events ls|purge`` on a configuration's store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from dockyard.app import create_services
from dockyard.cli.main import main
from dockyard.config import load_config
from dockyard.events import TagDeleted
from dockyard.notify.leader import LEASE
from tests.servers.dockyard import free_port


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    hooks = [
        {"name": "down", "url": f"http://127.0.0.1:{free_port()}/"},
        {"name": "off", "url": "http://127.0.0.1:9/", "disabled": True},
    ]
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root")}},
        "notifications": {"endpoints": hooks},
    }
    path.write_text(yaml.safe_dump(tree))
    return path


async def _queue(path: Path, count: int) -> None:
    services = create_services(load_config(path))
    assert services.notifier is not None
    for i in range(count):
        services.registry.events.emit(TagDeleted("app", f"t{i}"))
    await services.notifier.spool.drain()
    await services.notifier.deliverer.stop()
    await services.coordinator.close()


def test_ls_then_purge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    asyncio.run(_queue(path, 3))
    assert main(["events", "ls", "--config", str(path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["down"]["pending"], rows["off"]["pending"], rows["off"]["disabled"]) == (3, 0, True)
    assert main(["events", "purge", "nope", "--config", str(path)]) == 2
    assert main(["events", "purge", "down", "--config", str(path)]) == 0
    assert "purged 3 events for down" in capsys.readouterr().out
    assert main(["events", "ls", "--config", str(path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["down"]["pending"], rows["down"]["dropped"]) == (0, 3)
    assert (
        list((tmp_path / "root").rglob("notifications/spool/*.json")) == []
    )  # every enabled endpoint had them


def test_purge_refuses_while_a_sender_holds_the_queue(tmp_path: Path) -> None:
    path = _config(tmp_path)
    asyncio.run(_queue(path, 1))

    async def hold() -> None:
        services = create_services(load_config(path))
        assert services.notifier is not None
        await services.notifier.deliverer.client.aclose()
        assert await services.coordinator.acquire_lease(LEASE, "a-running-registry", 60)
        await services.coordinator.close()

    asyncio.run(hold())
    assert main(["events", "purge", "down", "--config", str(path)]) == 5


def test_redeliver_clears_the_backoff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    asyncio.run(_queue(path, 2))

    async def fail_once() -> None:
        services = create_services(load_config(path))
        assert services.notifier is not None
        assert await services.notifier.deliverer.step() is False  # "down" refuses the connection
        await services.notifier.deliverer.stop()
        await services.coordinator.close()

    asyncio.run(fail_once())
    assert main(["events", "ls", "--config", str(path), "--json"]) == 0
    down = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["down"]
    assert (down["pending"], down["failures"]) == (2, 1) and down["lastError"]
    assert main(["events", "redeliver", "off", "--config", str(path)]) == 2  # disabled: not queued
    assert main(["events", "redeliver", "down", "--config", str(path)]) == 0
    assert "2 events for down go at the next round" in capsys.readouterr().out
    assert main(["events", "ls", "--config", str(path), "--json"]) == 0
    down = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["down"]
    assert (down["pending"], down["failures"]) == (2, 0)
