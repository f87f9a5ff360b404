"""The Jinja2 environment (templates ship in the package) and the filters pages use."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def absolute_time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative_time(epoch: float | None, now: float | None = None) -> str:
    if epoch is None:
        return "never"
    seconds = max(0, int((time.time() if now is None else now) - epoch))
    for span, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ):
        if seconds >= span:
            n = seconds // span
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}:{hex_[:12]}"


def referrer_kind(artifact_type: str | None) -> str:
    text = (artifact_type or "").lower()
    if "sig" in text or "cosign" in text or "notary" in text:
        return "Signature"
    if "spdx" in text or "cyclonedx" in text or "sbom" in text or "syft" in text:
        return "SBOM"
    if "in-toto" in text or "attest" in text or "provenance" in text or "slsa" in text:
        return "Attestation"
    return "Artifact"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dockyard.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters: dict[str, Any] = {
        "size": human_size,
        "ago": relative_time,
        "utc": absolute_time,
        "short": short_digest,
        "referrer_kind": referrer_kind,
    }
    env.filters.update(filters)
    return env
