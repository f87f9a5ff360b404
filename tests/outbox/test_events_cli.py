"""``dockyard events ls|redeliver|purge`` over the PostgreSQL outbox (``database.dsn``)."""

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


def test_ls_redeliver_purge_and_refusal(tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yml"
    tree = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root")}},
        "database": {"dsn": dsn},
        "notifications": {"endpoints": [{"name": "down", "url": f"http://127.0.0.1:{free_port()}/"}]},
    }
    path.write_text(yaml.safe_dump(tree))

    async def queue_and_fail() -> None:
        services = create_services(load_config(path))
        assert services.notifier is not None
        for i in range(3):
            services.registry.events.emit(TagDeleted("app", f"t{i}"))
        await services.notifier.spool.drain()
        assert await services.notifier.deliverer.step() is False  # refused: a failure
        await services.notifier.deliverer.stop()
        await services.coordinator.close()

    def ls() -> dict[str, object]:
        assert main(["events", "ls", "--config", str(path), "--json"]) == 0
        rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
        return rows[0]

    asyncio.run(queue_and_fail())
    row = ls()
    assert (row["pending"], row["failures"]) == (3, 1)
    assert main(["events", "redeliver", "down", "--config", str(path)]) == 0
    assert "3 events for down go at the next round" in capsys.readouterr().out
    row = ls()
    assert (row["failures"], row["pending"]) == (0, 3)
    assert main(["events", "purge", "down", "--config", str(path)]) == 0
    assert "purged 3 events for down" in capsys.readouterr().out
    row = ls()
    assert (row["pending"], row["dropped"]) == (0, 3)

    async def hold() -> None:
        services = create_services(load_config(path))
        assert services.notifier is not None
        await services.notifier.deliverer.stop()
        assert await services.coordinator.acquire_lease(LEASE, "a-running-registry", 60)
        await services.coordinator.close()

    asyncio.run(hold())
    assert main(["events", "purge", "down", "--config", str(path)]) == 5
    assert main(["events", "redeliver", "down", "--config", str(path)]) == 5
