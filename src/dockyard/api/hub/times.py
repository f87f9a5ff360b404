"""Timestamps as Docker Hub writes them: RFC 3339, UTC, microseconds, ``Z``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

ACTIVE_SECONDS = 30 * 24 * 3600.0  # Hub: a tag is "active" if pushed or pulled in the past month


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status(*epochs: float | None, now: float | None = None) -> str:
    now = time.time() if now is None else now
    recent = [e for e in epochs if e is not None and now - e < ACTIVE_SECONDS]
    return "active" if recent else "inactive"
