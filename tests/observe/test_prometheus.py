"""A real Prometheus scrapes a two-worker ``dockyard serve``; PromQL sums the workers' counts.

Each request goes on a connection of its own, so granian spreads them over both workers; the
count Prometheus answers must be exactly the number of requests the test made.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.servers.dockyard import LiveRegistry, ServerProcess, free_port

pytestmark = pytest.mark.live
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
REQUESTS = 40
QUERY = 'sum(dockyard_http_requests_total{route="catalog",method="GET",status="200"})'


class Prometheus(ServerProcess):
    what = "prometheus"
    ready_path = "/-/ready"

    def __init__(self, workdir: Path, target: str) -> None:
        super().__init__(workdir, None, "prometheus.log")
        self.target = target

    def write_config(self) -> None:
        scrape = {
            "job_name": "dockyard",
            "scrape_interval": "1s",
            "static_configs": [{"targets": [self.target]}],
        }
        config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [
            PROMETHEUS,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def query(self, promql: str) -> list[dict[str, object]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success"
        result: list[dict[str, object]] = body["data"]["result"]
        return result


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    debug = f"127.0.0.1:{free_port()}"
    config = {"http": {"debug": {"addr": debug, "prometheus": {"enabled": True, "path": "/metrics"}}}}
    multiproc = tmp_path / "multiproc"
    registry = LiveRegistry(
        tmp_path / "registry", config=config, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    )
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"left by an earlier server")  # emptied at start
    with registry:
        prometheus = Prometheus(tmp_path / "prometheus", debug)
        try:
            prometheus._spawn(60, False)
            yield registry, prometheus, debug, multiproc
        finally:
            prometheus.stop()


def test_prometheus_sums_the_request_count_over_the_workers(served) -> None:  # type: ignore[no-untyped-def]
    registry, prometheus, debug, multiproc = served
    assert not (multiproc / "counter_999999.db").exists()
    for _ in range(REQUESTS):
        with httpx.Client(base_url=registry.url) as client:  # a new connection each time
            assert client.get("/v2/_catalog").status_code == 200
    writers = {p.name.rsplit("_", 1)[1] for p in multiproc.glob("counter_*.db")}
    assert len(writers) == 2, writers  # both workers keep values in the shared directory
    assert httpx.get(f"http://{debug}/other").status_code == 404
    line = f'dockyard_http_requests_total{{method="GET",route="catalog",status="200"}} {float(REQUESTS)}'
    deadline = time.monotonic() + 30
    while line not in (exposed := httpx.get(f"http://{debug}/metrics").text) and time.monotonic() < deadline:
        time.sleep(0.2)  # workers hand their tallies over a second after a request
    assert line in exposed, exposed
    deadline = time.monotonic() + 60
    answer: list[dict[str, object]] = []
    while time.monotonic() < deadline:  # until a scrape after the last request is stored
        answer = prometheus.query(QUERY)
        if answer and answer[0]["value"][1] == str(REQUESTS):  # type: ignore[index]
            break
        time.sleep(0.5)
    print(f"PromQL {QUERY} -> {answer}")
    assert answer and answer[0]["value"][1] == str(REQUESTS), (answer, prometheus.log()[-2000:])  # type: ignore[index]
    up = prometheus.query('up{job="dockyard"}')
    assert up and up[0]["value"][1] == "1"  # type: ignore[index]
