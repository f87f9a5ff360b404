"""SIGTERM lets in-flight requests finish, then the server exits 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.regclient import det_bytes, digest_of, slow_chunks, start_upload, with_digest
from tests.servers.dockyard import LiveRegistry

REPO = "graceful/repo"
SIZE = 8 * 1024 * 1024


def test_sigterm_finishes_an_inflight_upload(tmp_path: Path) -> None:
    registry = LiveRegistry(tmp_path / "registry").start()
    data = det_bytes("sigterm", SIZE)
    digest = digest_of(data)
    outcome: dict[str, object] = {}
    try:
        assert registry.proc is not None
        proc = registry.proc
        with httpx.Client(base_url=registry.url) as client:
            location = start_upload(client, REPO)
        session_data = (
            (registry.root / "docker/registry/v2/repositories" / REPO / "_uploads")
            / urlsplit(location).path.rsplit("/", 1)[1]
            / "data"
        )

        def upload() -> None:
            # One monolithic PUT whose body takes about 4 s to arrive.
            try:
                with httpx.Client(timeout=60) as client:
                    r = client.put(
                        with_digest(location, digest),
                        content=slow_chunks(data, pieces=40, delay=0.1),
                        headers={"Content-Type": "application/octet-stream", "Content-Length": str(SIZE)},
                    )
                    outcome["response"] = (r.status_code, r.headers.get("docker-content-digest"), r.text)
            except httpx.HTTPError as exc:
                outcome["error"] = repr(exc)
            outcome["finished"] = time.monotonic()

        sender = threading.Thread(target=upload)
        sender.start()
        deadline = time.monotonic() + 20
        while session_data.stat().st_size < 1024 * 1024:  # the server is in the middle of the body
            assert time.monotonic() < deadline, "the upload never reached the disk"
            time.sleep(0.02)
        signalled, received = time.monotonic(), session_data.stat().st_size
        proc.send_signal(signal.SIGTERM)
        sender.join(60)
        assert not sender.is_alive()
        proc.wait(60)
        exited = time.monotonic()
        print(
            f"SIGTERM after {received} of {SIZE} bytes had been stored; the upload ended "
            f"{float(outcome['finished']) - signalled:.2f}s later with {outcome.get('response') or outcome}; "  # type: ignore[arg-type]
            f"process exited {proc.returncode} after {exited - signalled:.2f}s"
        )
        assert outcome.get("response") == (201, digest, ""), outcome
        assert proc.returncode == 0
    finally:
        registry.stop()

    with (
        LiveRegistry(tmp_path / "after", root=registry.root) as again,
        httpx.Client(base_url=again.url) as client,
    ):
        r = client.get(f"/v2/{REPO}/blobs/{digest}")
        assert r.status_code == 200 and r.content == data
