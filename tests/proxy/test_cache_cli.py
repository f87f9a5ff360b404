"""``dockyard cache ls|purge`` on a store the cache filled (``--config``: the storage directly)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from dockyard.cli.main import main
from tests.proxy.conftest import Proxy, Upstream
from tests.proxy.images import push
from tests.proxy.test_pull import pull


def test_cache_ls_and_purge_on_the_store(
    make_upstream: Callable[..., Upstream],
    make_proxy: Callable[..., Proxy],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "store"
    storage = {"filesystem": {"rootdirectory": str(root)}}
    up = make_upstream()

    async def fill() -> None:
        async with up.client() as c:
            for name in ("a", "b"):
                await push(c, f"library/{name}", "1", seed=name, sizes=(200_000,))
        proxy = make_proxy({"docker.io": (up, {})}, storage=storage)
        for name in ("a", "b"):
            await pull(proxy, f"docker.io/library/{name}", "1")
        await proxy.client.aclose()
        await proxy.services.proxy.close(0)  # type: ignore[union-attr]
        await proxy.services.coordinator.close()

    asyncio.run(fill())
    config = tmp_path / "config.yml"
    upstreams = [{"prefix": "docker.io", "remoteurl": "http://127.0.0.1:9"}]
    config.write_text(yaml.safe_dump({"storage": storage, "proxy": {"upstreams": upstreams}}))

    assert main(["cache", "ls", "--config", str(config), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert sorted(i["repository"] for i in listing["images"]) == [
        "docker.io/library/a",
        "docker.io/library/b",
    ]
    assert listing["cacheBytes"] > 400_000

    assert main(["cache", "ls", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "docker.io/library/a" in out and "never" not in out and "in 2 images" in out

    assert main(["cache", "purge", "--config", str(config)]) == 2
    assert "--expired" in capsys.readouterr().err
    assert main(["cache", "purge", "docker.io/library/b", "--dry-run", "--config", str(config)]) == 0
    assert "would evict docker.io/library/b@" in capsys.readouterr().out
    assert main(["cache", "purge", "docker.io/library/*", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "evicted 2 images, freed" in out, out
    assert main(["cache", "ls", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == []
    assert main(["cache", "purge", "--expired", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["evicted"] == []

    hosted_only = tmp_path / "plain.yml"
    hosted_only.write_text(yaml.safe_dump({"storage": storage}))
    assert main(["cache", "ls", "--config", str(hosted_only)]) == 4
    assert "no pull-through cache" in capsys.readouterr().err
