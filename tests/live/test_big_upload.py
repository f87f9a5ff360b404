"""A 2 GiB blob streamed through the server keeps its memory flat."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx

from tests.live.livetools import group_rss_kib
from tests.regclient import StreamedData, det_bytes, push_blob, start_upload, with_digest
from tests.servers.dockyard import LiveRegistry

SIZE = 2 * 1024**3
LIMIT_MB = 150
REPO = "big/blob"


class RssSampler(threading.Thread):
    """Samples the VmRSS of every process of a process group (main process and workers)."""

    def __init__(self, pgid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pgid = pgid
        self.interval = interval
        self.peak_total_kib = 0
        self.peak_by_pid: dict[int, int] = {}
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = group_rss_kib(self.pgid)
            self.samples += 1
            self.peak_total_kib = max(self.peak_total_kib, sum(rss.values()))
            for pid, kib in rss.items():
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), kib)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def test_2gib_streamed_upload_keeps_rss_flat(tmp_path: Path) -> None:
    registry = LiveRegistry(tmp_path / "registry").start()
    try:
        assert registry.proc is not None
        pgid = registry.proc.pid
        with httpx.Client(base_url=registry.url, timeout=600) as client:
            # Warm both workers up (imports, first requests) before measuring the idle size.
            for i in range(4):
                push_blob(client, REPO, det_bytes(f"warm-{i}", 3 * 1024 * 1024), mode="chunked")
            time.sleep(0.3)
            idle = group_rss_kib(pgid)
            idle_total = sum(idle.values())
            sampler = RssSampler(pgid)
            sampler.start()

            stream = StreamedData(SIZE, chunk=1 << 20, seed="two-gib")
            started = time.monotonic()
            location = start_upload(client, REPO)
            r = client.patch(
                location,
                content=stream.chunks(),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(SIZE)},
            )
            assert r.status_code == 202, r.text
            assert r.headers["range"] == f"0-{SIZE - 1}"
            r = client.put(with_digest(r.headers["location"], stream.digest))
            elapsed = time.monotonic() - started
            sampler.stop()
            assert r.status_code == 201, r.text
            assert r.headers["docker-content-digest"] == stream.digest
            assert stream.sent == SIZE

            head = client.head(f"/v2/{REPO}/blobs/{stream.digest}")
            assert (head.status_code, head.headers["content-length"]) == (200, str(SIZE))
            last = SIZE // stream.chunk - 1
            r = client.get(
                f"/v2/{REPO}/blobs/{stream.digest}",
                headers={"Range": f"bytes={last * stream.chunk}-{SIZE - 1}"},
            )
            assert r.status_code == 206 and r.content == stream.expected_chunk(last)

        growth_mb = (sampler.peak_total_kib - idle_total) / 1024
        per_pid = {
            pid: f"{idle.get(pid, 0) / 1024:.0f}->{peak / 1024:.0f} MB"
            for pid, peak in sampler.peak_by_pid.items()
        }
        print(
            f"2 GiB upload: {elapsed:.1f}s, {SIZE / 2**20 / elapsed:.0f} MiB/s; group RSS idle "
            f"{idle_total / 1024:.0f} MB, peak {sampler.peak_total_kib / 1024:.0f} MB "
            f"(+{growth_mb:.0f} MB) over {sampler.samples} samples; per process {per_pid}"
        )
        assert sampler.samples > 10
        assert growth_mb < LIMIT_MB, f"server RSS grew by {growth_mb:.0f} MB during the upload"
    finally:
        registry.stop()
        shutil.rmtree(registry.root, ignore_errors=True)  # do not leave 2 GiB in pytest's temp dirs
