"""``dockyard health`` (the image's HEALTHCHECK) against a live registry, and the URL it derives."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.cli.health import health_url
from dockyard.cli.main import main
from dockyard.config import parse_config
from tests.servers.dockyard import LiveRegistry


def test_answers_zero_while_serving_and_one_after(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LiveRegistry(tmp_path, workers=1) as live:
        assert main(["health", str(live.config_path)]) == 0
        assert '"storage": "ok"' in capsys.readouterr().out
    assert main(["health", str(live.config_path), "--timeout", "2"]) == 1
    assert "/health" in capsys.readouterr().err


def test_url_follows_listener_tls_and_prefix() -> None:
    def url(http: dict[str, object]) -> str:
        return health_url(parse_config({"http": http}))

    assert url({"addr": ":5000"}) == "http://127.0.0.1:5000/health"
    assert url({"addr": "[::]:5000", "prefix": "/reg/"}) == "http://[::1]:5000/reg/health"
    tls = {"certificate": "/c.pem", "key": "/k.pem"}
    assert url({"addr": "10.1.2.3:443", "tls": tls}) == "https://10.1.2.3:443/health"
